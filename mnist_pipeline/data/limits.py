"""Size caps on what a file declares (compressed sizes, image headers), checked in exact integers before anything
is allocated or decompressed, so a decompression bomb costs a few bytes of reading.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable
from pathlib import Path

from mnist_pipeline.errors import DataFormatError

MIB = 2**20
# One array of a dataset being ingested (EMNIST ByClass, the largest relative, is 638 MB of pixels).
MAX_ARRAY_BYTES = 1024 * MIB
# One batch file given to `predict` or `add-data` (about 340 000 images of 28x28): what keeps it under 1 GB.
MAX_BATCH_BYTES = 256 * MIB
# One picture (4096x4096, a 16 MP photo): preprocessing shrinks it to 28x28 and needs ~30 bytes per pixel.
MAX_IMAGE_PIXELS = 2**24
# One member of a saved `.keras` model (its config, its weights with optimizer state).
MAX_MODEL_MEMBER_BYTES = 1024 * MIB


def count_bytes(shape: Iterable[int], item_size: int = 1) -> int:
    """Bytes an array of `shape` holds, in Python integers (numpy's int64 product wraps around silently)."""
    return math.prod(int(side) for side in shape) * item_size


def check_declared_size(origin: str, what: str, declared: int, limit: int, unit: str = "bytes") -> None:
    """Refuse content whose declared size is over `limit`, before it is read."""
    if declared > limit:
        raise DataFormatError(
            f"{origin}: expected {what} of at most {limit:,} {unit}, found a declared size of {declared:,} {unit}"
        )


def check_image_pixels(height: int, width: int, origin: str | None = None) -> None:
    """Refuse a picture of more than MAX_IMAGE_PIXELS before it is decoded or prepared (see MAX_IMAGE_PIXELS);
    without `origin`, the caller names the input."""
    pixels = int(height) * int(width)
    if pixels > MAX_IMAGE_PIXELS:
        where = "" if origin is None else f"{origin}: "
        raise DataFormatError(
            f"{where}expected images of at most {MAX_IMAGE_PIXELS:,} pixels each (scale them down first), "
            f"found {width}x{height} = {pixels:,} pixels"
        )


def check_zip_members(path: Path, archive: zipfile.ZipFile, limit: int) -> None:
    """Refuse an archive any of whose members declares more than `limit` bytes uncompressed: `zipfile` never
    decompresses past a member's declared `file_size`, so this bounds what reading the members costs."""
    for info in archive.infolist():
        check_declared_size(f"{path}: member {info.filename}", "a member", info.file_size, limit)
