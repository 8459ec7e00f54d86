"""Errors a user can act on: the CLI prints them as one message and exits non-zero, no traceback."""


class PipelineError(Exception):
    """Base for every error caused by input, configuration or data rather than by a bug."""


class DataFormatError(PipelineError):
    """A file is missing, truncated, corrupt or not in the format we expected."""


class ChecksumError(PipelineError):
    """Downloaded or cached bytes do not match the published checksum."""


class SourceUnavailable(PipelineError):
    """A data source cannot be reached (no network, no cache)."""


class ValidationFailed(PipelineError):
    """One or more data expectations failed; training must not start."""


def describe_problem(exc: Exception) -> str:
    """One line for an input that failed in any way: our errors as they are, anything else named by its type (a
    library's parser can raise any kind on a hostile file; one input's failure must not stop the others)."""
    if isinstance(exc, PipelineError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "expected an input that fits in memory, found one too large to decode (MemoryError)"
    return f"expected a readable input, found {type(exc).__name__}: {exc}"
