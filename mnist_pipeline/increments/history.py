"""What was accepted before: `increments/index.parquet`, one row (content hash, part, increment) per image.

The gate checks a batch against these stored hashes, so its cost grows with the batch and not with the history:
nothing accepted is ever read back as images or hashed again. The index is rewritten atomically, by the gate
only, under `.locks/increments.lock`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import atomic_path
from mnist_pipeline.increments.hashing import SHA_BYTES

INDEX_SCHEMA = pa.schema([("sha", pa.binary(SHA_BYTES)), ("part", pa.string()), ("increment", pa.string())])


def as_sha_array(shas: np.ndarray) -> pa.Array:
    """Hashes ('S16') as an Arrow fixed_size_binary(16) array, for storage and hashed membership tests."""
    buffer = pa.py_buffer(np.ascontiguousarray(shas).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(SHA_BYTES), len(shas), [None, buffer])


def read_index(layout: DataLayout, columns: tuple[str, ...] = tuple(INDEX_SCHEMA.names)) -> pa.Table:
    """Every accepted image's hash, part and increment (or just `columns`), in acceptance order (empty before the
    first)."""
    schema = pa.schema([INDEX_SCHEMA.field(name) for name in columns])
    path = layout.increments_index
    if not path.exists():
        return schema.empty_table()
    try:
        table = pq.ParquetFile(path, memory_map=True).read(columns=list(columns))
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, KeyError, ValueError) as exc:
        raise DataFormatError(f"{path}: expected the increments index ({', '.join(columns)}), found: {exc}") from exc


def list_increments(index: pa.Table) -> list[str]:
    """The accepted increments' ids in acceptance order."""
    return index.column("increment").unique().to_pylist()  # unique keeps the order of first appearance


def append_to_index(layout: DataLayout, index: pa.Table, shas: np.ndarray, test: np.ndarray, increment: str) -> None:
    """Rewrite the index with one increment's images added at the end; call under the increments lock."""
    n = len(shas)
    added = pa.table(
        {
            "sha": as_sha_array(shas),
            "part": pa.array(np.where(test, "test", "train").tolist(), type=pa.string()),
            "increment": pa.array([increment] * n, type=pa.string()),
        },
        schema=INDEX_SCHEMA,
    )
    with atomic_path(layout.increments_index) as tmp:
        pq.write_table(pa.concat_tables([index, added]), tmp, compression="zstd")
