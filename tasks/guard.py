"""The wrapper every flow and task body runs in, whichever process (served, work-pool, Dask worker) runs it.

It keeps user errors one line long and sends our logs to Prefect. Prefect logs a traceback for every failed run,
even for bad input or a full disk; and it forwards only the loggers named in PREFECT_LOGGING_EXTRA_LOGGERS to its
API. Served, work-pool and Dask runs execute in processes the CLI never configured, so every flow and task body
calls `install_pipeline_logging` itself.
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
    """Strip the traceback from records about a user error; the message itself already says what is wrong.

    A raw OSError (raised by Prefect's own machinery rather than by our code) gets its one-line description
    appended, so the record still names the path and the operation.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PipelineError):
            record.exc_info = None
            record.exc_text = None
        elif isinstance(exc, OSError):
            record.msg, record.args = f"{record.getMessage()}: {describe_os_error(exc)}", None
            record.exc_info = None
            record.exc_text = None
        return True


def install_on_prefect_handlers() -> None:
    """Attach the filter to every handler of Prefect's loggers (console and API alike)."""
    names = [name for name in logging.root.manager.loggerDict if name == "prefect" or name.startswith("prefect.")]
    handlers = {handler for name in names for handler in logging.getLogger(name).handlers}
    handlers |= set(logging.getLogger(PIPELINE_LOGGER).handlers)
    for handler in handlers:
        if not any(isinstance(existing, DropUserErrorTracebacks) for existing in handler.filters):
            handler.addFilter(DropUserErrorTracebacks())


def register_pipeline_logger() -> None:
    """Send `mnist_pipeline` records to Prefect's API handler, as PREFECT_LOGGING_EXTRA_LOGGERS would."""
    ensure_logging_setup()
    ours = logging.getLogger(PIPELINE_LOGGER)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in ours.handlers:
            ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)


def install_pipeline_logging() -> None:
    """Both of the above; idempotent and cheap, so every flow and task calls it first."""
    register_pipeline_logger()
    install_on_prefect_handlers()


def guarded(function: F) -> F:
    """Register our logging with Prefect in this process, and turn OSErrors into one-line user errors."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_pipeline_logging()
        with os_errors_as_user_errors():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
