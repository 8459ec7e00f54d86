"""The inbox: batches landed atomically (built in `inbox/.staging-*`, renamed in) and waiting for the gate, and
refused ones with their reasons; the files are listed in docs/increments.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import sync_path, write_json_atomic, write_text_atomic
from mnist_pipeline.increments.hashes import SHA_DTYPE, as_sha_array, hash_images
from mnist_pipeline.increments.sources import LabelledBatch
from mnist_pipeline.predict.preprocess import MNIST_SHAPE
from mnist_pipeline.validation.suite import PIXEL_RANGE

BATCH_FILE = "batch.parquet"
META_FILE = "batch.json"
REASONS_FILE = "reasons.txt"
IMAGE_BYTES = MNIST_SHAPE[0] * MNIST_SHAPE[1]


@dataclass(frozen=True)
class PendingBatch:
    """A landed batch read back: its metadata (batch.json), the arrays, and the content hash of each image."""

    id: str
    meta: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray
    shas: np.ndarray
    names: list[str]
    table: pa.Table


def keep_first_of_repeats(batch: LabelledBatch) -> tuple[LabelledBatch, list[str]]:
    """The batch without the images that repeat an earlier one with the same label, and the repeats' names. Only
    images that pass their own checks (ink, pixels in range) count: the others stay for the gate to name."""
    low, high = PIXEL_RANGE
    valid = ~batch.empty & (batch.raw_min >= low) & (batch.raw_max <= high)
    first: dict[bytes, int] = {}
    keep = np.ones(batch.rows, dtype=bool)
    for row in np.flatnonzero(valid):
        key = batch.images[row].tobytes() + f"|{int(batch.labels[row])}".encode()
        keep[row] = first.setdefault(key, row) == row
    if keep.all():
        return batch, []
    arrays = {name: getattr(batch, name)[keep] for name in ("images", "labels", "raw_height", "raw_width")}
    arrays |= {name: getattr(batch, name)[keep] for name in ("raw_min", "raw_max", "empty")}
    names = [name for name, kept in zip(batch.names, keep, strict=True) if kept]
    return dataclasses.replace(batch, names=names, **arrays), [batch.names[row] for row in np.flatnonzero(~keep)]


def land_batch(layout: DataLayout, batch: LabelledBatch, source: str, note: str | None) -> str:
    """Write `batch` to the inbox atomically and return its id, `b-<UTC time>-<8 hex of its content hash>`.

    The same content landed twice in the same second is one batch (the id already there is returned). An image
    repeated with the same label is kept once, the first time: its repeats are named in the batch's
    `repeats_dropped` (the same image under two labels stays, for the gate to refuse).
    """
    batch, repeats = keep_first_of_repeats(batch)
    shas = hash_images(batch.images)
    digest = hashlib.sha256(shas.tobytes() + np.ascontiguousarray(batch.labels, dtype="<i8").tobytes())
    received = datetime.now(UTC)
    batch_id = f"b-{received:%Y%m%dT%H%M%S}-{digest.hexdigest()[:8]}"
    final = layout.inbox / batch_id
    if final.is_dir():
        return batch_id
    layout.inbox.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=layout.inbox, prefix=".staging-"))
    staging.chmod(0o755)
    try:
        pq.write_table(batch_table(batch, shas), staging / BATCH_FILE, compression="zstd")
        sync_path(staging / BATCH_FILE)
        meta = {
            "id": batch_id,
            "source": source,
            "note": note,
            "received_at": received.isoformat(timespec="seconds"),
            "rows": batch.rows,
            "problems": batch.problems,
            "repeats_dropped": repeats,
        }
        write_json_atomic(staging / META_FILE, meta)
        staging.rename(final)
        sync_path(layout.inbox)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return batch_id


def batch_table(batch: LabelledBatch, shas: np.ndarray) -> pa.Table:
    """The `batch.parquet` table: label, image (784 bytes), sha (16 bytes), name and the raw measurements."""
    n = batch.rows
    pixels = pa.py_buffer(np.ascontiguousarray(batch.images, dtype=np.uint8).tobytes())
    return pa.table(
        {
            "label": pa.array(batch.labels, type=pa.int64()),
            "image": pa.FixedSizeBinaryArray.from_buffers(pa.binary(IMAGE_BYTES), n, [None, pixels]),
            "sha": as_sha_array(shas),
            "name": pa.array(batch.names, type=pa.string()),
            "raw_height": pa.array(batch.raw_height, type=pa.int32()),
            "raw_width": pa.array(batch.raw_width, type=pa.int32()),
            "raw_min": pa.array(batch.raw_min, type=pa.float64()),
            "raw_max": pa.array(batch.raw_max, type=pa.float64()),
            "empty": pa.array(batch.empty, type=pa.bool_()),
        }
    )


def list_pending(layout: DataLayout) -> list[str]:
    """Ids of the batches waiting in the inbox, oldest first (ids sort by landing time)."""
    if not layout.inbox.is_dir():
        return []
    return sorted(path.name for path in layout.inbox.glob("b-*") if (path / META_FILE).is_file())


def read_pending(layout: DataLayout, batch_id: str, folder: Path | None = None) -> PendingBatch:
    """A landed batch's metadata and arrays (from `folder`, default its inbox folder: a refused one is read too); a
    batch that is not there is a DataFormatError naming the folder."""
    folder = folder or layout.inbox / batch_id
    try:
        meta = json.loads((folder / META_FILE).read_text())
        with pq.ParquetFile(folder / BATCH_FILE) as parquet:
            table = parquet.read()
    except FileNotFoundError as exc:
        raise DataFormatError(f"{folder}: expected a pending batch (batch.json, batch.parquet), found none") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, pa.ArrowInvalid) as exc:
        raise DataFormatError(f"{folder}: expected a batch landed by mnist-pipeline, found: {exc}") from exc
    n = table.num_rows
    return PendingBatch(
        id=batch_id,
        meta=meta,
        images=fixed_column(table, "image").reshape(n, *MNIST_SHAPE) if n else np.zeros((0, *MNIST_SHAPE), np.uint8),
        labels=table.column("label").to_numpy(),
        shas=fixed_column(table, "sha").view(SHA_DTYPE).reshape(n),
        names=table.column("name").to_pylist(),
        table=table,
    )


def fixed_column(table: pa.Table, name: str) -> np.ndarray:
    """A fixed_size_binary column's bytes as one flat uint8 array (n * width)."""
    chunk = table.column(name).combine_chunks()
    width = chunk.type.byte_width
    if len(chunk) == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(chunk.buffers()[1], dtype=np.uint8, count=len(chunk) * width, offset=chunk.offset * width)


def refuse_batch(layout: DataLayout, batch_id: str, reasons: list[str]) -> Path:
    """Move a pending batch to `inbox/refused/<id>/` with `reasons.txt`; returns the refused folder."""
    folder = layout.inbox / batch_id
    write_text_atomic(folder / REASONS_FILE, "".join(f"{reason}\n" for reason in reasons))
    target = layout.refused / batch_id
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    folder.rename(target)
    sync_path(target.parent)
    sync_path(layout.inbox)
    return target


def remove_pending(layout: DataLayout, batch_id: str) -> None:
    """Drop an accepted batch from the inbox (its increment holds its images now)."""
    shutil.rmtree(layout.inbox / batch_id)
    sync_path(layout.inbox)
