"""Reader for the IDX format used by MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST, ...)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from mnist_pipeline.errors import DataFormatError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped: by the gzip magic) into a uint8 array."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected an IDX file, found no such file") from exc
    except OSError as exc:
        raise DataFormatError(f"{path}: expected a readable IDX file, found {exc.strerror or exc}") from exc
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataFormatError(
                f"{path}: expected a complete gzip stream, found a truncated or corrupt one ({exc})"
            ) from exc
    elif path.suffix == ".gz":
        raise DataFormatError(f"{path}: expected gzip data (magic 1f8b), found {data[:2].hex() or 'an empty file'}")
    return parse_idx(data, str(path))


def parse_idx(data: bytes, origin: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array of the declared shape; no copy of the payload."""
    if len(data) < 4:
        raise DataFormatError(f"{origin}: expected an IDX header of at least 4 bytes, found {len(data)} bytes")
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != _UBYTE or ndim == 0:
        raise DataFormatError(
            f"{origin}: expected IDX magic 0x0000 08 0N (unsigned bytes, N>0 dims), found 0x{data[:4].hex()}"
        )
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise DataFormatError(f"{origin}: expected {header_end} header bytes for {ndim} dims, found {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(data) - header_end
    if found != expected:
        raise DataFormatError(
            f"{origin}: header declares shape {shape} = {expected} bytes of data, found {found} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_end).reshape(shape)
