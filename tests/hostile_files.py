"""Hostile and broken inputs, made on the fly: each writes one file and returns the text its failure line must hold.

Every maker is cheap (under a second, a few MB of memory at most) even where the file declares gigabytes: the
bombs are streamed through zlib or written as repeated row groups, so making them never costs what reading them
naively would.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mnist_pipeline.data.limits import MAX_BATCH_BYTES, MAX_IMAGE_PIXELS

MIB = 2**20


def write_garbage_exif_jpeg(folder: Path) -> tuple[Path, str]:
    """A valid 28x28 JPEG whose EXIF block is not TIFF: Pillow's EXIF parser raises SyntaxError on it."""
    path = folder / "garbage-exif.jpg"
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(path, exif=b"Exif\x00\x00" + bytes(range(256)) * 2)
    return path, "expected EXIF metadata Pillow can read"


def write_gzip_bomb_idx(folder: Path) -> tuple[Path, str]:
    """A 1 000:1 gzipped IDX file: a header declaring one 28x28 image, then 62 MB of zeros (61 KB on disk)."""
    path = folder / "bomb-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(side.to_bytes(4, "big") for side in (1, 28, 28))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    with path.open("wb") as out:
        out.write(compressor.compress(header))
        zeros = bytes(MIB)
        for _ in range(62):
            out.write(compressor.compress(zeros))
        out.write(compressor.flush())
    return path, "header declares shape (1, 28, 28) = 784 bytes of data, found more"


def write_overflowing_idx(folder: Path) -> tuple[Path, str]:
    """An IDX header whose dimensions multiply to 2**64: numpy's int64 product wraps to 0 and passed the old check."""
    path = folder / "overflow-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"".join(side.to_bytes(4, "big") for side in (2**31, 2**31, 4)))
    return path, f"expected IDX data (header declares shape (2147483648, 2147483648, 4)) of at most {MAX_BATCH_BYTES:,}"


def write_oversized_gzip_idx(folder: Path) -> tuple[Path, str]:
    """A gzipped IDX header declaring 400 000 images (313 MB, over the batch cap), with no payload at all."""
    path = folder / "huge-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (400_000, 28, 28))))
    return path, f"of at most {MAX_BATCH_BYTES:,} bytes, found a declared size of 313,600,000 bytes"


def write_negative_parquet(folder: Path) -> tuple[Path, str]:
    """A Parquet batch of our schema whose height and width are -28 (their product matches the 784-byte images)."""
    path = folder / "negative.parquet"
    rows = 3
    image = pa.FixedSizeBinaryArray.from_buffers(pa.binary(784), rows, [None, pa.py_buffer(bytes(784 * rows))])
    table = pa.table(
        {
            "row_id": pa.array(np.arange(rows, dtype=np.int64)),
            "label": pa.array(np.zeros(rows, dtype=np.int64)),
            "height": pa.array(np.full(rows, -28, dtype=np.int32)),
            "width": pa.array(np.full(rows, -28, dtype=np.int32)),
            "image": image,
        }
    )
    pq.write_table(table, path)
    return path, "expected positive image sides, found height -28 and width -28"


def write_zstd_parquet_bomb(folder: Path) -> tuple[Path, str]:
    """400 000 blank 28x28 images (313 MB declared) as zstd Parquet: a few hundred KB on disk."""
    path = folder / "bomb.parquet"
    rows = 16_000
    image = pa.FixedSizeBinaryArray.from_buffers(pa.binary(784), rows, [None, pa.py_buffer(bytes(784 * rows))])
    table = pa.table(
        {
            "label": pa.array(np.zeros(rows, dtype=np.int64)),
            "height": pa.array(np.full(rows, 28, dtype=np.int32)),
            "width": pa.array(np.full(rows, 28, dtype=np.int32)),
            "image": image,
        }
    )
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(25):
            writer.write_table(table)
    return path, "400,000 rows of at most"


def write_npz_bomb(folder: Path) -> tuple[Path, str]:
    """An .npz whose member `x.npy` is 400 000 blank images (313 MB of zeros, deflated to a few hundred KB)."""
    path = folder / "bomb.npz"
    shape = (400_000, 28, 28)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        zeros = bytes(4 * MIB)
        full, rest = divmod(400_000 * 28 * 28, len(zeros))
        for _ in range(full):
            member.write(zeros)
        member.write(zeros[:rest])
    return path, "expected member x.npy (header and array) of at most"


def write_lying_npz(folder: Path) -> tuple[Path, str]:
    """An .npz whose `x.npy` header declares 10**12 images but holds 10 bytes: np.load would try to allocate it."""
    path = folder / "lying.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**12, 28, 28)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(10))
    return path, "expected array x (header declares shape (1000000000000, 28, 28), uint8) of at most"


def write_postscript_png(folder: Path) -> tuple[Path, str]:
    """An Encapsulated PostScript file named `.png`: Pillow alone identifies it as EPS (and would run Ghostscript)."""
    path = folder / "digit-postscript.png"
    path.write_text(
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n%%EndComments\n"
        "newpath 14 4 moveto 14 24 lineto 3 setlinewidth stroke\nshowpage\n%%EOF\n"
    )
    return path, "cannot identify image file"


def write_pixel_bomb_png(folder: Path) -> tuple[Path, str]:
    """A 6000x6000 PNG (36 M pixels: below Pillow's own 89 M warning, above our cap), streamed by hand, ~40 KB."""
    path = folder / "pixel-bomb.png"
    side = 6000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then black grey pixels
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return (
        path,
        f"expected images of at most {MAX_IMAGE_PIXELS:,} pixels each (scale them down first), found 6000x6000",
    )


HOSTILE: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "garbage-exif": write_garbage_exif_jpeg,
    "gzip-bomb-idx": write_gzip_bomb_idx,
    "overflowing-idx": write_overflowing_idx,
    "oversized-gzip-idx": write_oversized_gzip_idx,
    "negative-parquet": write_negative_parquet,
    "zstd-parquet-bomb": write_zstd_parquet_bomb,
    "npz-bomb": write_npz_bomb,
    "lying-npz": write_lying_npz,
    "postscript-png": write_postscript_png,
    "pixel-bomb-png": write_pixel_bomb_png,
}
