"""The wrapper every flow and task body runs in, whichever process (served, work-pool, Dask worker) runs it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from mnist_pipeline.os_errors import os_errors_as_user_errors
from mnist_pipeline.runs.log_filters import install_pipeline_logging

F = TypeVar("F", bound=Callable[..., Any])


def guarded(function: F) -> F:
    """Register our logging with Prefect in this process, and turn OSErrors into one-line user errors."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_pipeline_logging()
        with os_errors_as_user_errors():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
