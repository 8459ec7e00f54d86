"""Advisory file locks (fcntl.flock) that serialise work on one data or reports folder across processes.

The kernel drops a flock when its holder dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def hold_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or shared) lock on `path`, waiting for other holders; the file is created if missing."""
    handle = open_lock(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        handle.close()


def open_lock(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a")
