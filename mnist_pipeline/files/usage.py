"""Marking files used, so garbage collection (`champion.retention.collect_garbage`) keeps them.

The collector deletes only what nobody used for its grace period, judged by modification time, and holds the data
dir's gc lock exclusively while it does. A user touches what it reuses while holding that lock shared: a collection
then either finished first (the file is gone, the caller makes it again) or starts after (it sees the file fresh),
and never deletes it in between. Nothing is held while the work itself runs, so no run pins anything.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mnist_pipeline.files.atomic import hold_lock


def mark_used(lock: Path, paths: Iterable[Path]) -> bool:
    """Touch each path that exists, under `lock` held shared; returns whether all of them exist.

    Only recency is lost where a file cannot be touched (another user's file, a read-only mount)."""
    paths = list(paths)
    with hold_lock(lock, shared=True):
        for path in paths:
            with contextlib.suppress(OSError):
                os.utime(path)
        return all(path.exists() for path in paths)


def reuse_summary(lock: Path, summary: Path, *outputs: Path) -> dict[str, Any] | None:
    """The JSON summary recorded beside `outputs` when it and they are there (marked used), else None.

    A summary is written after its outputs, so its presence says they are complete; one that cannot be read is no
    record, and the stage runs again and rewrites it."""
    if not mark_used(lock, [*outputs, summary]):
        return None
    try:
        recorded = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return recorded if isinstance(recorded, dict) else None
