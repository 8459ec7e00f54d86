"""Accepted increments: `increments/<id>/{train,test}.parquet` + `manifest.json`, immutable once renamed in.

Each image's part comes from its content hash alone (`hashes.is_test_part`). The parts use the dataset split
schema plus a `sha` column, so a grown dataset version is the base splits with these rows appended.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from mnist_pipeline.data.checksums import hash_split
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split, split_to_table
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import sync_path, write_json_atomic
from mnist_pipeline.increments.hashes import append_to_index, as_sha_array, is_test_part, list_increments, read_index
from mnist_pipeline.increments.inbox import REASONS_FILE, PendingBatch, remove_pending
from mnist_pipeline.validation.results import CheckResult
from mnist_pipeline.validation.suite import CLASSES

MANIFEST_FILE = "manifest.json"


def accept_batch(
    layout: DataLayout, batch: PendingBatch, checks: list[CheckResult], drift: dict[str, Any] | None
) -> dict[str, Any]:
    """Make the batch an increment, add it to the index and drop it from the inbox; returns its manifest. Call
    under the increments lock; what a killed gate already did is kept and only what is missing is completed."""
    test = is_test_part(batch.shas)
    final = layout.increments / batch.id
    if (final / MANIFEST_FILE).is_file():
        manifest = read_increment_manifest(layout, batch.id)
    else:
        manifest = _write_increment(layout, batch, test, checks, drift)
    index = read_index(layout)
    if batch.id not in set(index.column("increment").unique().to_pylist()):
        append_to_index(layout, index, batch.shas, test, batch.id)
    remove_pending(layout, batch.id)
    return manifest


def is_accepted(layout: DataLayout, batch_id: str) -> bool:
    """Whether the index holds the batch: then it is accepted, even if a killed gate left it pending."""
    return batch_id in list_increments(read_index(layout, ("increment",)))


def discard_unfinished(layout: DataLayout, batch_id: str) -> None:
    """Remove the increment folder of a batch the index does not hold, before the batch is refused: a gate killed
    between writing the folder and updating the index leaves one, and no version ever holds it."""
    folder = layout.increments / batch_id
    if folder.is_dir() and not is_accepted(layout, batch_id):
        shutil.rmtree(folder)
        sync_path(layout.increments)


@dataclass(frozen=True)
class BatchVerdict:
    """What the gate made of one batch, with a note when this gate did not judge it itself."""

    id: str
    accepted: bool
    reasons: list[str]
    rows: dict[str, int] | None
    drift: list[str] = field(default_factory=list)
    note: str | None = None


def find_verdict(layout: DataLayout, batch_id: str) -> BatchVerdict | None:
    """What became of a batch that is not pending: accepted, refused (`inbox/refused/`), or None when neither."""
    if is_accepted(layout, batch_id):
        return BatchVerdict(batch_id, True, [], read_increment_manifest(layout, batch_id)["rows"])
    reasons = layout.refused / batch_id / REASONS_FILE
    if reasons.is_file():
        return BatchVerdict(batch_id, False, reasons.read_text().splitlines(), None)
    return None


def _write_increment(
    layout: DataLayout, batch: PendingBatch, test: np.ndarray, checks: list[CheckResult], drift: dict[str, Any] | None
) -> dict[str, Any]:
    layout.increments.mkdir(parents=True, exist_ok=True)
    for leftover in layout.increments.glob(".staging-*"):  # only a gate holding the lock makes these: a killed one's
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=layout.increments, prefix=".staging-"))
    staging.chmod(0o755)
    parts = {"train": ~test, "test": test}
    try:
        hashes = {}
        for name, chosen in parts.items():
            split = Split(images=batch.images[chosen], labels=batch.labels[chosen].astype(np.int64))
            table = split_to_table(split).append_column("sha", as_sha_array(batch.shas[chosen]))
            pq.write_table(table, staging / f"{name}.parquet", compression="zstd")
            sync_path(staging / f"{name}.parquet")
            hashes[name] = hash_split(split.images, split.labels)
        manifest = {
            "id": batch.id,
            "source": batch.meta.get("source"),
            "note": batch.meta.get("note"),
            "received_at": batch.meta.get("received_at"),
            "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": {name: int(chosen.sum()) for name, chosen in parts.items()},
            "labels": {
                name: np.bincount(batch.labels[chosen], minlength=len(CLASSES))[: len(CLASSES)].tolist()
                for name, chosen in parts.items()
            },
            "sha256": hashes,
            "checks": [check.message for check in checks],
            "drift": drift,
        }
        write_json_atomic(staging / MANIFEST_FILE, manifest)
        staging.rename(layout.increments / batch.id)
        sync_path(layout.increments)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def read_increment_manifest(layout: DataLayout, increment: str) -> dict[str, Any]:
    path = layout.increments / increment / MANIFEST_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: expected an increment manifest, found: {exc}") from exc


def read_part(layout: DataLayout, increment: str, part: str) -> Split:
    """One increment's train or test part."""
    return read_split(layout.increments / increment / f"{part}.parquet")
