"""Dataset versions under `datasets/`: which one is current, and marking one used.

Every change to `datasets/` and the `parquet` symlink happens under the ingest lock, so concurrent ingests wait
instead of deleting each other's folders. Only folders ingest marked (`MARKER`) are ever collected.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AbstractContextManager
from pathlib import Path

from mnist_pipeline.data.layout import DataLayout, version_name
from mnist_pipeline.files.atomic import hold_lock, remove_stale_temps, replace_symlink, sync_path
from mnist_pipeline.files.usage import mark_used

log = logging.getLogger(__name__)

MARKER = ".created-by-mnist-pipeline"
FAILED_SUFFIX = ".failed-validation"
# Only ingest creates these, and only while it holds the ingest lock: under that lock, any found is a leftover.
INGEST_LEFTOVERS = ("datasets/.staging-*", "raw/*/.*.tmp", "raw/*/.pip-*", ".parquet.*.link")
# A version folder being replaced is renamed to this prefix + its name; never a leftover to delete blindly: between
# the two renames of a swap it is the version's only copy (see `settle_swap`).
SET_ASIDE_PREFIX = ".replaced-"


def ingest_lock(layout: DataLayout) -> AbstractContextManager[None]:
    """Serialise every change to dataset versions and the `parquet` symlink of one data dir."""
    return hold_lock(layout.locks / "ingest.lock")


def current_version(layout: DataLayout) -> str | None:
    """Name of the version `parquet` points at, or None before the first publish."""
    link = layout.root / "parquet"
    return link.readlink().name if link.is_symlink() else None


def make_current(layout: DataLayout, fingerprint: str) -> None:
    """Point `parquet` at a validated version; call under the ingest lock."""
    name = version_name(fingerprint)
    if current_version(layout) != name:
        replace_symlink(layout.root / "parquet", f"{layout.versions.name}/{name}")


def mark_ingested(layout: DataLayout, fingerprint: str) -> bool:
    """Mark a re-ingested version used; returns whether it is still there (else gc took it: it is written anew)."""
    return mark_used(layout.gc_lock, [layout.versions / version_name(fingerprint)])


def set_aside(layout: DataLayout, fingerprint: str) -> Path | None:
    """Rename a version that failed validation to `<version>.failed-validation`; the current one is never moved."""
    name = version_name(fingerprint)
    folder = layout.versions / name
    if current_version(layout) == name or not folder.is_dir():
        return None
    failed = folder.with_name(name + FAILED_SUFFIX)
    if failed.exists():
        shutil.rmtree(failed)
    folder.rename(failed)
    sync_path(layout.versions)
    return failed


def set_aside_path(layout: DataLayout, name: str) -> Path:
    """Where `store.write_version` moves the version folder `name` while it renames the rewritten one in."""
    return layout.versions / f"{SET_ASIDE_PREFIX}{name}"


def settle_swap(aside: Path, target: Path) -> None:
    """Finish a version swap a killed ingest left half done: the copy set aside goes back where the version is
    missing (the only copy is never deleted), and is removed once the new folder is in place."""
    if not aside.is_dir():
        return
    if target.exists():
        shutil.rmtree(aside)
    else:
        aside.rename(target)
        sync_path(target.parent)
        log.warning("restored %s: an ingest was killed while it replaced this version", target)


def clean_leftovers(layout: DataLayout) -> list[Path]:
    """Remove what killed processes left (call under the ingest lock); a version set aside by a killed swap is put
    back first (`settle_swap`)."""
    for aside in layout.versions.glob(f"{SET_ASIDE_PREFIX}*"):
        settle_swap(aside, layout.versions / aside.name.removeprefix(SET_ASIDE_PREFIX))
    found = [path for pattern in INGEST_LEFTOVERS for path in layout.root.glob(pattern)]
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found + remove_stale_temps(layout.root)
