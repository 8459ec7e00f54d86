"""Reader for the IDX format used by MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST, ...).

Streamed (gzip too): the header's declared size is checked against a cap first, and no more than the declared
payload plus one byte is ever decompressed, so a gzip bomb costs its header.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist_pipeline.data.limits import MAX_ARRAY_BYTES, check_declared_size, count_bytes
from mnist_pipeline.errors import DataFormatError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_idx(path: Path, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Read one IDX file (plain or gzipped: by the gzip magic) into a uint8 array of at most `max_bytes`."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            if magic == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw) as stream:
                    return read_idx_stream(stream, str(path), max_bytes)
            if path.suffix == ".gz":
                raise DataFormatError(
                    f"{path}: expected gzip data (magic 1f8b), found {magic.hex() or 'an empty file'}"
                )
            return read_idx_stream(raw, str(path), max_bytes)
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected an IDX file, found no such file") from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(
            f"{path}: expected a complete gzip stream, found a truncated or corrupt one ({exc})"
        ) from exc
    except OSError as exc:
        raise DataFormatError(f"{path}: expected a readable IDX file, found {exc.strerror or exc}") from exc


def read_idx_stream(stream: BinaryIO, origin: str, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Parse an IDX stream: header first, its declared size checked, then exactly that many payload bytes."""
    head = stream.read(4)
    ndim = _check_magic(head, origin)
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataFormatError(f"{origin}: expected {4 + 4 * ndim} header bytes for {ndim} dims, found {4 + len(dims)}")
    shape = tuple(int(side) for side in np.frombuffer(dims, dtype=">u4"))
    expected = count_bytes(shape)
    check_declared_size(origin, f"IDX data (header declares shape {shape})", expected, max_bytes)
    data = stream.read(expected + 1)
    if len(data) != expected:
        found = f"{len(data)} bytes" if len(data) < expected else "more"
        raise DataFormatError(f"{origin}: header declares shape {shape} = {expected} bytes of data, found {found}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _check_magic(head: bytes, origin: str) -> int:
    """The number of dimensions the 4-byte magic declares, or a DataFormatError."""
    if len(head) < 4:
        raise DataFormatError(f"{origin}: expected an IDX header of at least 4 bytes, found {len(head)} bytes")
    zero, dtype_code, ndim = int.from_bytes(head[:2], "big"), head[2], head[3]
    if zero != 0 or dtype_code != _UBYTE or ndim == 0:
        raise DataFormatError(
            f"{origin}: expected IDX magic 0x0000 08 0N (unsigned bytes, N>0 dims), found 0x{head[:4].hex()}"
        )
    return ndim
