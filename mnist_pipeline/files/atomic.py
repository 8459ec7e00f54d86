"""Files that several processes share: atomic, durable output, and advisory locks that serialise work on them.

Output is fsynced, renamed over the target and the folder fsynced (the rename alone is not durable), so after a
crash the target holds the old or the new content. The kernel drops a flock when its holder dies: no stale locks.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def sync_path(path: Path) -> None:
    """Flush a file's or a folder's content and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Temp files of atomic writes live for seconds; one this old belongs to a process that was killed.
STALE_TEMP_SECONDS = 15 * 60


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it replaces `target` durably, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o644)
    try:
        yield tmp
        sync_path(tmp)
        os.replace(tmp, target)
        sync_path(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: Path, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False, default=default) + "\n")


def copy_file_atomic(source: Path, target: Path) -> None:
    """Copy `source` to `target` so that readers see the old file or the whole new one."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` atomically (a new link renamed over the old one) and durably."""
    tmp = link.parent / f".{link.name}.{os.getpid()}.link"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
    sync_path(link.parent)


def remove_stale_temps(root: Path) -> list[Path]:
    """Remove the temp files and staging folders under `root` that killed processes left: those older than
    STALE_TEMP_SECONDS (younger ones may be live)."""
    if not root.is_dir():
        return []
    cutoff = time.time() - STALE_TEMP_SECONDS
    temps = [path for path in root.rglob(".*.tmp") if path.is_file()]
    temps += [path for path in root.glob("models/*/.*.keras.*") if path.is_dir()]
    temps += [path for path in root.glob("inbox/.staging-*") if path.is_dir()]  # a batch add-data was landing
    stale = [path for path in temps if path.lstat().st_mtime < cutoff]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


@contextmanager
def hold_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or shared) lock on `path`, waiting for other holders; the file is created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        handle.close()
