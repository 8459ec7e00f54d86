"""Read what a person asks about: image files, folders of them, and batches (.npz, IDX, ingest's Parquet splits);
each becomes named MNIST-style images (`preprocess`) or one failure naming it, so one bad file never stops others.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from mnist_pipeline.data.dataset import to_uint8_images
from mnist_pipeline.data.idx import read_idx
from mnist_pipeline.data.limits import MAX_BATCH_BYTES, check_image_pixels
from mnist_pipeline.data.sources.local import read_npz_arrays
from mnist_pipeline.errors import DataFormatError, describe_problem
from mnist_pipeline.predict.preprocess import EmptyImageError, to_grayscale, to_mnist_style, to_mnist_style_batch

# Files a folder contributes (any explicitly named file is tried with Pillow whatever its suffix).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".tga", ".qoi", ".avif", ".ico"}
)
# The Pillow formats those suffixes name (tests check it against `Image.registered_extensions()`): the only ones
# `read_image` lets Pillow try. The formats Pillow registers without loading every plugin come first, so a PNG or
# JPEG opens without the ~0.1 s `Image.init()`.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "PPM", "TIFF", "WEBP", "AVIF", "TGA", "QOI", "ICO")
BATCH_SUFFIXES = frozenset({".npz", ".parquet"})
IDX_NAME = re.compile(r"idx3[-.]ubyte(\.gz)?$", re.IGNORECASE)
NPZ_KEYS = ("x", "images")


@dataclass(frozen=True)
class LoadedInputs:
    """Prepared uint8 images (n, h, w), one name per image, and the inputs that failed with their problem."""

    names: list[str]
    images: np.ndarray
    failures: list[tuple[str, str]]


@dataclass
class _Entry:
    """One input's images in input order and, by index, those that failed (a failed read holds one black image)."""

    names: list[str]
    images: np.ndarray
    problems: dict[int, str] = field(default_factory=dict)


class _Collector:
    """Gathers inputs in order; single images of the model's size are prepared together in one vectorised batch.

    Images already MNIST-style (most 28x28 files) are then recognised together instead of one by one, which is
    what makes thousands of small files fast; larger pictures are prepared as they are read, so a folder of
    photos never holds more than one of them in memory. A batch file is prepared as one batch when read.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.entries: list[_Entry] = []
        self.pending: list[_Entry] = []

    def fail(self, name: str, problem: str) -> None:
        self.entries.append(_Entry([name], np.zeros((1, *self.shape), dtype=np.uint8), {0: problem}))

    def add(self, path: Path) -> None:
        """Read one file; whatever goes wrong with it (see `describe_problem`) becomes its one failure."""
        try:
            if is_batch(path):
                images, problems = to_mnist_style_batch(read_batch(path), self.shape)
                self.entries.append(_Entry([f"{path}[{index}]" for index in range(len(images))], images, problems))
                return
            gray = to_grayscale(read_image(path))
            if gray.shape == self.shape:
                entry = _Entry([str(path)], gray[np.newaxis])
                self.pending.append(entry)
            else:
                entry = _Entry([str(path)], to_mnist_style(gray, self.shape)[np.newaxis])
            self.entries.append(entry)
        except Exception as exc:  # any failure of one input is that input's line, not the run's end
            self.fail(str(path), describe_problem(exc).removeprefix(f"{path}: "))

    def finish(self) -> LoadedInputs:
        if self.pending:
            prepared, problems = to_mnist_style_batch(
                np.concatenate([entry.images for entry in self.pending]), self.shape
            )
            for index, entry in enumerate(self.pending):
                entry.images = prepared[index : index + 1]
                entry.problems = {0: problems[index]} if index in problems else {}
        names, chunks, failures = [], [np.zeros((0, *self.shape), dtype=np.uint8)], []
        for entry in self.entries:
            keep = np.ones(len(entry.images), dtype=bool)
            keep[list(entry.problems)] = False
            names.extend(name for name, kept in zip(entry.names, keep, strict=True) if kept)
            chunks.append(entry.images[keep])
            # One line each, whatever a library's message held (Arrow's span several).
            failures.extend(
                (entry.names[index], " ".join(problem.split())) for index, problem in entry.problems.items()
            )
        return LoadedInputs(names, np.concatenate(chunks), failures)


def load_inputs(paths: list[Path], shape: tuple[int, int]) -> LoadedInputs:
    """Expand folders (recursively, sorted) and read every input; problems are collected, not raised."""
    collector = _Collector(tuple(shape))
    for path in paths:
        try:
            if path.is_dir():
                files = list_folder(path)
                if not files:
                    collector.fail(str(path), "expected image files in this folder, found none")
                for file in files:
                    collector.add(file)
            elif path.exists():
                collector.add(path)
            else:
                collector.fail(str(path), "expected an image file or folder, found no such path")
        except OSError as exc:  # a name too long, a folder that cannot be listed
            collector.fail(str(path), f"expected a readable file or folder, found: {exc.strerror or exc}")
    return collector.finish()


def list_folder(folder: Path) -> list[Path]:
    """Image and batch files under `folder`, sorted; hidden files and other suffixes are left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and (path.suffix.lower() in IMAGE_SUFFIXES or is_batch(path))
    )


def is_batch(path: Path) -> bool:
    return path.suffix.lower() in BATCH_SUFFIXES or bool(IDX_NAME.search(path.name))


def read_image(path: Path | BinaryIO, formats: tuple[str, ...] = IMAGE_FORMATS) -> Image.Image:
    """Decode the file with Pillow, upright (EXIF orientation applied), the first frame of an animation.

    Only the formats of IMAGE_SUFFIXES are tried (`IMAGE_FORMATS`), whatever the file's name: Pillow identifies a
    file by its content, and a PostScript file named `.png` would otherwise go to Ghostscript. The size in the
    header is checked (`limits.check_image_pixels`) before any pixel is decoded. Any failure, whatever Pillow's
    plugin raised, is a DataFormatError. The web app passes an in-memory upload and its narrower `formats`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=formats) as image:
                width, height = image.size
                check_image_pixels(height, width)
                decoded = image.copy()  # decodes (the current frame) fully
    except DataFormatError:
        raise
    except Exception as exc:  # Pillow's plugins raise many kinds on hostile files
        raise DataFormatError(f"expected an image Pillow can read ({', '.join(formats)}), found: {exc}") from exc
    try:
        return ImageOps.exif_transpose(decoded)
    except Exception as exc:  # the EXIF parser raises SyntaxError, struct.error, ValueError...
        raise DataFormatError(f"expected EXIF metadata Pillow can read (for the orientation), found: {exc}") from exc


def to_png(image: np.ndarray) -> bytes:
    """A prepared uint8 image as an 8-bit grayscale PNG: how corrections and queued scans are kept, and shown."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_batch(path: Path) -> np.ndarray:
    """uint8 (n, h, w) images from an .npz (`x` or `images`), an IDX image file, or an ingest Parquet split, each
    of at most MAX_BATCH_BYTES (checked from its header or footer before the data is read)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from mnist_pipeline.data.store import read_split  # pyarrow: imported only when a Parquet file is read

        images = read_split(path, MAX_BATCH_BYTES).images
    elif suffix == ".npz":
        images = next(iter(read_npz_arrays(path, NPZ_KEYS, any_one=True, max_bytes=MAX_BATCH_BYTES).values()))
        if images.ndim == 2 and images.shape[1] == 784:
            images = images.reshape(-1, 28, 28)
    else:
        images = read_idx(path, MAX_BATCH_BYTES)
    images = to_uint8_images(images, str(path))
    if images.shape[0] == 0:
        raise EmptyImageError("expected at least one image, found an empty batch")
    check_image_pixels(*images.shape[1:])
    return images
