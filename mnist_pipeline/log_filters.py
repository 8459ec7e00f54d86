"""Keep user errors one line long: Prefect logs a traceback for every failed run, even for bad input."""

from __future__ import annotations

import logging

from mnist_pipeline.errors import PipelineError


class DropUserErrorTracebacks(logging.Filter):
    """Strip the traceback from records about a PipelineError; the message itself already says what is wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            record.exc_info = None
            record.exc_text = None
        return True


def install_on_prefect_handlers() -> None:
    """Attach the filter to every handler of Prefect's loggers (console and API alike)."""
    names = [name for name in logging.root.manager.loggerDict if name == "prefect" or name.startswith("prefect.")]
    handlers = {handler for name in names for handler in logging.getLogger(name).handlers}
    for handler in handlers:
        if not any(isinstance(existing, DropUserErrorTracebacks) for existing in handler.filters):
            handler.addFilter(DropUserErrorTracebacks())
