"""The wrapper every flow and task body runs in, whichever process (served, work-pool, Dask worker) runs it: user
errors stay one line (Prefect logs a traceback for every failure) and our logs reach Prefect's API, in processes
the CLI never configured.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from prefect.logging.configuration import ensure_logging_setup

from mnist_pipeline.errors import PipelineError, describe_os_error, os_errors_as_user_errors

F = TypeVar("F", bound=Callable[..., Any])
PIPELINE_LOGGER = "mnist_pipeline"


class DropUserErrorTracebacks(logging.Filter):
    """Strip the traceback from records about a user error; a raw OSError (raised by Prefect's own machinery) gets
    its one-line description appended, so the record still names the path and the operation."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and not isinstance(exc, PipelineError):
            record.msg, record.args = f"{record.getMessage()}: {describe_os_error(exc)}", None
        if isinstance(exc, PipelineError | OSError):
            record.exc_info = None
            record.exc_text = None
        return True


def install_pipeline_logging() -> None:
    """Send `mnist_pipeline` records to Prefect's API handler, as PREFECT_LOGGING_EXTRA_LOGGERS would, and attach
    the filter to every handler of Prefect's loggers and ours; idempotent and cheap, so every flow and task calls it."""
    ensure_logging_setup()
    ours = logging.getLogger(PIPELINE_LOGGER)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in ours.handlers:
            ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)
    names = [name for name in logging.root.manager.loggerDict if name == "prefect" or name.startswith("prefect.")]
    handlers = {handler for name in names for handler in logging.getLogger(name).handlers} | set(ours.handlers)
    for handler in handlers:
        if not any(isinstance(existing, DropUserErrorTracebacks) for existing in handler.filters):
            handler.addFilter(DropUserErrorTracebacks())


def guarded(function: F) -> F:
    """Register our logging with Prefect in this process, and turn OSErrors into one-line user errors."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_pipeline_logging()
        with os_errors_as_user_errors():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
