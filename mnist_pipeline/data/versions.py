"""Dataset versions under `datasets/`: which one is current, which are in use, which may go.

Every change to `datasets/` and to the `parquet` symlink happens under one lock on the data dir
(`.locks/ingest.lock`), so concurrent ingests wait for each other instead of deleting each other's folders.
A running flow pins the version it ingested with a shared lock on `.locks/pin-<version>`; the kernel drops it
when the flow's process ends, so a killed run never pins a version forever. Ingest marks each version folder
it creates, and retention only ever deletes marked folders: a folder copied in by hand is never touched.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from mnist_pipeline.data.ingest_records import forget_versions
from mnist_pipeline.data.layout import DataLayout, version_name
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.atomic import remove_stale_temps, replace_symlink, sync_path
from mnist_pipeline.files.locks import hold_lock, is_locked, open_lock

MARKER = ".created-by-mnist-pipeline"
FAILED_SUFFIX = ".failed-validation"
KEPT_VERSIONS = 3
# Only ingest creates these, and only while it holds the ingest lock: under that lock, any found is a leftover.
INGEST_LEFTOVERS = ("datasets/.staging-*", "raw/*/.download-*", "raw/*/.pip-*", ".parquet.*.link")


@contextmanager
def ingest_lock(layout: DataLayout) -> Iterator[None]:
    """Serialise every change to dataset versions and the `parquet` symlink of one data dir."""
    with hold_lock(layout.locks / "ingest.lock"):
        yield


@contextmanager
def pin_version(layout: DataLayout, fingerprint: str) -> Iterator[None]:
    """Keep retention away from this version while the block runs (a shared lock: many runs may pin one version).

    The pin is taken under the ingest lock, once the version is known to be there: retention runs only under that
    lock and unlinks the pin file of each version it deletes, so a pin taken outside it could land on a file
    retention was about to unlink, for a folder it was about to delete. Raises PipelineError, naming the folder,
    when a concurrent ingest's retention removed the version first.
    """
    name = version_name(fingerprint)
    with ExitStack() as pin:
        with ingest_lock(layout):
            folder = layout.versions / name
            if not folder.is_dir():
                raise PipelineError(
                    f"{folder}: expected dataset version {name} to be there for this run, found it gone "
                    "(a concurrent ingest's retention removed it first); run again to ingest it anew"
                )
            handle = pin.enter_context(open_lock(_pin_file(layout, name)))
            fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def current_version(layout: DataLayout) -> str | None:
    """Name of the version `parquet` points at, or None before the first publish."""
    link = layout.root / "parquet"
    return link.readlink().name if link.is_symlink() else None


def make_current(layout: DataLayout, fingerprint: str) -> None:
    """Point `parquet` at a validated version, then drop versions nobody needs; call under the ingest lock."""
    name = version_name(fingerprint)
    if current_version(layout) != name:
        replace_symlink(layout.root / "parquet", f"{layout.versions.name}/{name}")
        os.utime(layout.versions / name)  # newest for retention, whenever it was first written
    remove_old_versions(layout)


def mark_ingested(layout: DataLayout, fingerprint: str) -> None:
    """Make a version that was just ingested again the newest for retention, as a newly written one is."""
    os.utime(layout.versions / version_name(fingerprint))


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
    remove_old_versions(layout)
    return failed


def remove_old_versions(layout: DataLayout) -> list[Path]:
    """Keep the newest few versions ingest created, the current one, and every pinned one; returns the folders that
    went (the ingest records of removed versions go too, logged by `forget_versions`)."""
    current = current_version(layout)
    created = [path for path in layout.versions.iterdir() if (path / MARKER).is_file()]
    created.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    removed = []
    for old in created[KEPT_VERSIONS:]:
        name = old.name.removesuffix(FAILED_SUFFIX)
        if old.name == current or is_locked(_pin_file(layout, name)):
            continue
        shutil.rmtree(old, ignore_errors=True)
        _pin_file(layout, name).unlink(missing_ok=True)
        removed.append(old)
    # A version set aside and later ingested again has its plain folder (and a live record) back: keep that record.
    gone = {
        name
        for name in (path.name.removesuffix(FAILED_SUFFIX) for path in removed)
        if not (layout.versions / name).exists()
    }
    forget_versions(layout, gone)
    return removed


def clean_leftovers(layout: DataLayout) -> list[Path]:
    """Remove what killed processes left: ingest's staging and download folders (call under the ingest lock) and
    stale temp files of atomic writes anywhere under the data dir."""
    found = [path for pattern in INGEST_LEFTOVERS for path in layout.root.glob(pattern)]
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found + remove_stale_temps(layout.root)


def _pin_file(layout: DataLayout, name: str) -> Path:
    return layout.locks / f"pin-{name}"
