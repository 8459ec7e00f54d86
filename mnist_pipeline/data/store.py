"""The Parquet dataset: one file per split, one row per image, plus manifest.json; published atomically. The row
schema, and why the image column loads zero-copy, are in docs/data.md.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline import __version__
from mnist_pipeline.data.checksums import fingerprint_dataset, hash_split
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.limits import MAX_ARRAY_BYTES, check_declared_size
from mnist_pipeline.data.versions import MARKER, ingest_lock, make_current, mark_ingested, set_aside_path, settle_swap
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import sync_path, write_json_atomic

COLUMNS = ("row_id", "label", "height", "width", "image")
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class IngestResult:
    """What ingestion did; `reused` when the source was not even decoded (its input matched an ingest record)."""

    manifest: dict[str, Any]
    written: bool
    path: Path
    reused: bool = False


def split_to_table(split: Split) -> pa.Table:
    """Arrow table for one split; the pixel buffer is shared, not copied."""
    n, height, width = split.images.shape
    pixels = pa.py_buffer(np.ascontiguousarray(split.images))
    image = pa.FixedSizeBinaryArray.from_buffers(pa.binary(height * width), n, [None, pixels])
    return pa.table(
        {
            "row_id": pa.array(np.arange(n, dtype=np.int64)),
            "label": pa.array(split.labels, type=pa.int64()),
            "height": pa.array(np.full(n, height, dtype=np.int32)),
            "width": pa.array(np.full(n, width, dtype=np.int32)),
            "image": image,
        }
    )


def write_split(path: Path, split: Split) -> None:
    """Write one split as Parquet (zstd; row groups of 16k images)."""
    pq.write_table(split_to_table(split), path, compression="zstd", compression_level=1, row_group_size=16384)


def read_table(path: Path, columns: tuple[str, ...] = COLUMNS, max_bytes: int = MAX_ARRAY_BYTES) -> pa.Table:
    """Read a split file, naming the file and the columns when it is not one of ours; the footer's declared size is
    checked against `max_bytes` first. `ParquetFile`, not `pq.read_table`, which imports pyarrow.dataset (~0.15 s)."""
    try:
        with pq.ParquetFile(path, memory_map=True) as parquet:
            missing = [name for name in columns if name not in parquet.schema_arrow.names]
            if missing:
                raise DataFormatError(
                    f"{path}: expected Parquet with columns {', '.join(columns)}, found no {', '.join(missing)}"
                )
            declared = declared_table_bytes(parquet, columns)
            check_declared_size(str(path), f"{parquet.metadata.num_rows:,} rows", declared, max_bytes)
            return parquet.read(columns=list(columns))
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected a Parquet split file, found no such file") from exc
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path}: expected Parquet with columns {', '.join(columns)}, found: {exc}") from exc


def declared_table_bytes(parquet: pq.ParquetFile, columns: tuple[str, ...]) -> int:
    """What reading `columns` will hold, from the footer alone: fixed widths times rows, or declared chunk sizes."""
    schema = parquet.schema_arrow
    rows = parquet.metadata.num_rows
    fixed = sum(rows * (schema.field(name).type.bit_width // 8) for name in columns if _is_fixed(schema.field(name)))
    chunks = sum(
        chunk.total_uncompressed_size
        for group in range(parquet.metadata.num_row_groups)
        for chunk in (parquet.metadata.row_group(group).column(i) for i in range(parquet.metadata.num_columns))
        if chunk.path_in_schema in columns
    )
    return max(fixed, chunks)


def _is_fixed(field: pa.Field) -> bool:
    try:
        return field.type.bit_width > 0
    except ValueError:  # variable-width types have none
        return False


def images_from_table(table: pa.Table, origin: str) -> np.ndarray:
    """The image column as uint8 (n, height, width); zero-copy when the column is one null-free chunk."""
    column = table.column("image")
    if not pa.types.is_fixed_size_binary(column.type):
        raise DataFormatError(f"{origin}: expected image as fixed_size_binary, found {column.type}")
    if column.null_count:
        raise DataFormatError(f"{origin}: expected no null images, found {column.null_count}")
    n = table.num_rows
    if n == 0:
        return np.zeros((0, 0, 0), dtype=np.uint8)
    for name in ("height", "width"):
        sides = table.column(name)
        if not pa.types.is_integer(sides.type) or sides.null_count:
            raise DataFormatError(f"{origin}: expected {name} as integers without nulls, found {sides.type}")
    heights, widths = table.column("height").to_numpy(), table.column("width").to_numpy()
    height, width = int(heights[0]), int(widths[0])
    if height <= 0 or width <= 0:
        raise DataFormatError(f"{origin}: expected positive image sides, found height {height} and width {width}")
    if (heights != height).any() or (widths != width).any() or height * width != column.type.byte_width:
        raise DataFormatError(f"{origin}: expected one image size matching the image width in bytes, found mixed sizes")
    chunk = column.combine_chunks()
    size = column.type.byte_width
    flat = np.frombuffer(chunk.buffers()[1], dtype=np.uint8, count=n * size, offset=chunk.offset * size)
    return flat.reshape(n, height, width)


def read_split(path: Path, max_bytes: int = MAX_ARRAY_BYTES) -> Split:
    """Load a split file into arrays for training and evaluation (at most `max_bytes` of them)."""
    table = read_table(path, ("label", "height", "width", "image"), max_bytes)
    labels = table.column("label")
    if labels.null_count:
        raise DataFormatError(f"{path}: expected no null labels, found {labels.null_count}")
    return Split(images=images_from_table(table, str(path)), labels=labels.to_numpy().astype(np.int64, copy=False))


def read_manifest(layout: DataLayout) -> dict[str, Any]:
    """The published dataset's manifest; a clear error when nothing was ingested yet or the file is damaged."""
    try:
        return json.loads(layout.manifest.read_text())
    except FileNotFoundError as exc:
        raise DataFormatError(
            f"{layout.manifest}: expected a dataset manifest, found none (run `mnist-pipeline ingest` first)"
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(
            f"{layout.manifest}: expected JSON, found invalid or truncated content ({exc}); to recover, run "
            "`mnist-pipeline ingest --source SOURCE` again: it rewrites the version from the source"
        ) from exc


def _stored_fingerprint(layout: DataLayout) -> str | None:
    """The layout's fingerprint, if its files still hold exactly that content (an edited file forces a rewrite)."""
    try:
        manifest = read_manifest(layout)
        for split in manifest["splits"]:
            data = read_split(layout.split_file(split))
            if hash_split(data.images, data.labels) != manifest["splits"][split]["sha256"]:
                return None
    except (DataFormatError, KeyError, TypeError):
        return None
    return manifest.get("fingerprint")


def build_manifest(
    dataset: RawDataset, split_hashes: dict[str, str], fingerprint: str, lineage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The version's manifest; a grown version's `lineage` (base, parent, increments) follows its fingerprint."""
    splits = {}
    for name in dataset.split_names():
        split = dataset.split(name)
        _, height, width = split.images.shape
        splits[name] = {
            "file": f"{name}.parquet",
            "rows": split.rows,
            "height": height,
            "width": width,
            "sha256": split_hashes[name],
        }
    return {
        "manifest_version": MANIFEST_VERSION,
        "fingerprint": fingerprint,
        **(lineage or {}),
        "source": dataset.source,
        "origin": dataset.origin,
        "image_shape": list(dataset.train.images.shape[1:]),
        "splits": splits,
        "versions": {
            "python": platform.python_version(),
            "mnist_pipeline": __version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_version(dataset: RawDataset, layout: DataLayout, lineage: dict[str, Any] | None = None) -> IngestResult:
    """Write the dataset as the immutable folder `datasets/<version>` (not current yet), under `ingest_lock`. A
    folder holding this exact content is reused; the new one is built in a staging folder and renamed in."""
    names = dataset.split_names()
    split_hashes = {name: hash_split(dataset.split(name).images, dataset.split(name).labels) for name in names}
    fingerprint = fingerprint_dataset(split_hashes)
    pinned = layout.pin(fingerprint)
    if mark_ingested(layout, fingerprint) and _stored_fingerprint(pinned) == fingerprint:
        return IngestResult(read_manifest(pinned), written=False, path=pinned.parquet)
    if layout.root.joinpath("parquet").exists() and not layout.root.joinpath("parquet").is_symlink():
        raise DataFormatError(
            f"{layout.root / 'parquet'}: expected a symlink managed by mnist-pipeline, found a real directory"
        )
    layout.versions.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(dataset, split_hashes, fingerprint, lineage)
    staging = Path(tempfile.mkdtemp(dir=layout.versions, prefix=".staging-"))
    staging.chmod(0o755)
    final = pinned.parquet
    aside = set_aside_path(layout, final.name)  # a kill between the two renames leaves the old folder only here
    try:
        for name in names:
            write_split(staging / f"{name}.parquet", dataset.split(name))
            sync_path(staging / f"{name}.parquet")
        write_json_atomic(staging / "manifest.json", manifest)
        (staging / MARKER).write_text("written by mnist-pipeline ingest; retention may delete this folder\n")
        settle_swap(aside, final)
        if final.exists():
            final.rename(aside)
        staging.rename(final)
        sync_path(layout.versions)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
        settle_swap(aside, final)
    return IngestResult(manifest, written=True, path=final)


def publish_dataset(dataset: RawDataset, layout: DataLayout) -> IngestResult:
    """Write the dataset as a version and make it current at once, without validation (tests and benchmarks)."""
    with ingest_lock(layout):
        result = write_version(dataset, layout)
        make_current(layout, result.manifest["fingerprint"])
    return IngestResult(result.manifest, written=result.written, path=layout.root / "parquet")
