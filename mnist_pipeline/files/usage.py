"""Marking files used, so garbage collection (`champion.retention`) keeps them: touched under the gc lock held
shared, so a collection either finished first (the caller makes the file again) or sees it fresh.
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
    """Touch each path that exists (where one cannot be touched, only recency is lost), under `lock` held shared;
    returns whether all of them exist."""
    paths = list(paths)
    with hold_lock(lock, shared=True):
        for path in paths:
            with contextlib.suppress(OSError):
                os.utime(path)
        return all(path.exists() for path in paths)


def reuse_summary(lock: Path, summary: Path, *outputs: Path) -> dict[str, Any] | None:
    """The JSON summary recorded beside `outputs` when it and they are there (marked used), else None: it is written
    after them, so it says they are complete; an unreadable one is no record (the stage runs again)."""
    if not mark_used(lock, [*outputs, summary]):
        return None
    try:
        recorded = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return recorded if isinstance(recorded, dict) else None
