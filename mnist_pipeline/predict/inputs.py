"""Read what a person asks about: image files, folders of them, and batches (.npz, IDX, ingest's Parquet splits).

Every input becomes named images ready for a model (MNIST-style, see `preprocess`) or one failure naming it, so
one bad file never stops the others.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.predict.preprocess import EmptyImageError, to_grayscale, to_mnist_style, to_mnist_style_batch

# Files a folder contributes (any explicitly named file is tried with Pillow whatever its suffix).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".tga", ".qoi", ".avif", ".ico"}
)
BATCH_SUFFIXES = frozenset({".npz", ".parquet"})
IDX_NAME = re.compile(r"idx3[-.]ubyte(\.gz)?$", re.IGNORECASE)
NPZ_KEYS = ("x", "images")


@dataclass
class LoadedInputs:
    """Prepared uint8 images (n, h, w), one name per image, and the inputs that failed with their problem."""

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def stacked(self, shape: tuple[int, int]) -> np.ndarray:
        """All images as one (n, *shape) array."""
        return np.concatenate(self.images) if self.images else np.zeros((0, *shape), dtype=np.uint8)


@dataclass
class _Entry:
    """One file's images in input order: `ready` when already prepared, else raw grayscale of the model's size."""

    names: list[str]
    images: np.ndarray
    ready: bool
    problems: dict[int, str] = field(default_factory=dict)


class _Collector:
    """Gathers inputs in order and prepares all raw images of the model's size in one vectorised batch.

    Images already MNIST-style (most 28x28 files) are then recognised together instead of one by one, which is
    what makes thousands of small files fast; larger pictures are prepared as they are read, so a folder of
    photos never holds more than one of them in memory.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.entries: list[_Entry] = []
        self.failures: list[tuple[int, str, str]] = []

    def fail(self, name: str, problem: str) -> None:
        self.failures.append((len(self.entries), name, problem))

    def add(self, path: Path) -> None:
        try:
            if is_batch(path):
                images = read_batch(path)
                self.entries.append(_Entry([f"{path}[{index}]" for index in range(len(images))], images, False))
                return
            gray = to_grayscale(read_image(path))
            if gray.shape == self.shape:
                self.entries.append(_Entry([str(path)], gray[np.newaxis], False))
            else:
                self.entries.append(_Entry([str(path)], to_mnist_style(gray, self.shape)[np.newaxis], True))
        except DataFormatError as exc:
            self.fail(str(path), str(exc).removeprefix(f"{path}: "))

    def finish(self) -> LoadedInputs:
        groups: dict[tuple[int, ...], list[_Entry]] = {}
        for entry in self.entries:
            if not entry.ready:
                groups.setdefault(entry.images.shape[1:], []).append(entry)
        for entries in groups.values():
            prepared, problems = to_mnist_style_batch(np.concatenate([entry.images for entry in entries]), self.shape)
            start = 0
            for entry in entries:
                stop = start + len(entry.images)
                entry.images = prepared[start:stop]
                entry.problems = {index - start: problems[index] for index in range(start, stop) if index in problems}
                start = stop
        loaded = LoadedInputs()
        failures = list(self.failures)
        for position, entry in enumerate(self.entries):
            keep = np.ones(len(entry.images), dtype=bool)
            for index, problem in entry.problems.items():
                keep[index] = False
                failures.append((position, entry.names[index], problem))
            loaded.names.extend(name for name, kept in zip(entry.names, keep, strict=True) if kept)
            loaded.images.append(entry.images[keep])
        loaded.failures = [(name, problem) for _, name, problem in sorted(failures, key=lambda item: item[0])]
        return loaded


def load_inputs(paths: list[Path], shape: tuple[int, int]) -> LoadedInputs:
    """Expand folders (recursively, sorted) and read every input; problems are collected, not raised."""
    collector = _Collector(tuple(shape))
    for path in paths:
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
    return collector.finish()


def list_folder(folder: Path) -> list[Path]:
    """Image and batch files under `folder`, sorted; hidden files and other suffixes are left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and (path.suffix.lower() in IMAGE_SUFFIXES | BATCH_SUFFIXES or IDX_NAME.search(path.name))
    )


def is_batch(path: Path) -> bool:
    return path.suffix.lower() in BATCH_SUFFIXES or bool(IDX_NAME.search(path.name))


def read_image(path: Path) -> Image.Image:
    """Decode the file fully with Pillow (the first frame of an animation); any failure is a DataFormatError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"expected an image Pillow can read, found: {exc}") from exc


def read_batch(path: Path) -> np.ndarray:
    """uint8 (n, h, w) images from an .npz (`x` or `images`), an IDX image file, or an ingest Parquet split."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from mnist_pipeline.data.store import read_split

        images = read_split(path).images
    elif suffix == ".npz":
        images = read_npz_images(path)
    else:
        from mnist_pipeline.data.idx import read_idx

        images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(f"expected uint8 images of shape (n, height, width), found {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise EmptyImageError("expected at least one image, found an empty batch")
    return images


def read_npz_images(path: Path) -> np.ndarray:
    """The `x` or `images` array of an .npz (never unpickled); (n, 784) rows become (n, 28, 28)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = next((name for name in NPZ_KEYS if name in archive.files), None)
            if key is None:
                raise DataFormatError(f"expected an array named {' or '.join(NPZ_KEYS)}, found {archive.files}")
            images = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(f"expected an .npz archive of numpy arrays, found: {exc}") from exc
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, 28, 28)
    if images.dtype != np.uint8 and images.size and np.issubdtype(images.dtype, np.number):
        as_u8 = images.astype(np.uint8)
        if not np.array_equal(as_u8, images):
            raise DataFormatError(f"expected integral pixels in 0..255, found dtype {images.dtype}")
        images = as_u8
    return images
