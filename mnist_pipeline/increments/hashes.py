"""Image content hashes: computed from prepared images, deciding the 80/20 train/test split (by the bytes alone, so
an image always lands in the same part), and stored in `increments/index.parquet`, one row (content hash, part,
increment) per accepted image, rewritten atomically by the gate only under `.locks/increments.lock`
(docs/increments.md).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import atomic_path

SHA_BYTES = 16
SHA_DTYPE = f"S{SHA_BYTES}"
TEST_PERCENT = 20
INDEX_SCHEMA = pa.schema([("sha", pa.binary(SHA_BYTES)), ("part", pa.string()), ("increment", pa.string())])


def hash_images(images: np.ndarray) -> np.ndarray:
    """BLAKE2b-128 of each uint8 (n, 28, 28) image's bytes, as a dtype 'S16' array."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), int(np.prod(images.shape[1:])))
    digests = [hashlib.blake2b(row.data, digest_size=SHA_BYTES).digest() for row in flat]
    return np.array(digests, dtype=SHA_DTYPE) if digests else np.zeros(0, dtype=SHA_DTYPE)


def is_test_part(shas: np.ndarray) -> np.ndarray:
    """Per hash: True for the test part (the first 8 bytes, big-endian, modulo 100 below 20), else train."""
    if len(shas) == 0:
        return np.zeros(0, dtype=bool)
    leading = np.frombuffer(np.ascontiguousarray(shas, dtype=SHA_DTYPE).tobytes(), dtype=">u8").reshape(-1, 2)[:, 0]
    return leading % 100 < TEST_PERCENT


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
