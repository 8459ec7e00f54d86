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
