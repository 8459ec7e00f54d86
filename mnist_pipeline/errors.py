"""Errors a user can act on: the CLI prints them as one message and exits non-zero, no traceback.

OS errors are such errors too: what the user needs is which path, which operation, and what the system said.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

# What an OS operation needed, by errno: completes "expected ..." in the message.
EXPECTED = {
    errno.EACCES: "permission to write or read there",
    errno.EPERM: "permission to write or read there",
    errno.EROFS: "a writable file system",
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free disk quota",
    errno.ENOTDIR: "a directory at every step of the path",
    errno.EISDIR: "a file, not a directory",
    errno.ENOENT: "the path to exist",
    errno.EEXIST: "no existing file there",
    errno.ENAMETOOLONG: "a shorter path",
}


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


class StorageError(PipelineError):
    """An operating-system call on a path failed (permissions, full disk, a file where a folder should be)."""


def failed_operation(tb: TracebackType | None) -> str:
    """The innermost Python function that was running: the operation (mkdir, open, save_model, ...)."""
    name = "file operation"
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name.strip("_<>") or "file operation"


def describe_os_error(exc: OSError) -> str:
    """One line: `PATH: OPERATION failed: expected WHAT, found REASON`."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "(no path)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    expected = EXPECTED.get(exc.errno or 0, "the operation to succeed")
    return f"{where}: {failed_operation(exc.__traceback__)} failed: expected {expected}, found {reason}"


@contextmanager
def os_errors_as_user_errors() -> Iterator[None]:
    """Turn any OSError raised inside into a StorageError with the one-line description."""
    try:
        yield
    except OSError as exc:
        raise StorageError(describe_os_error(exc)) from exc
