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
from mnist_pipeline.predict.preprocess import EmptyImageError, to_mnist_style, to_mnist_style_batch

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


def load_inputs(paths: list[Path], shape: tuple[int, int]) -> LoadedInputs:
    """Expand folders (recursively, sorted) and read every input; problems are collected, not raised."""
    loaded = LoadedInputs()
    for path in paths:
        if path.is_dir():
            files = list_folder(path)
            if not files:
                loaded.failures.append((str(path), "expected image files in this folder, found none"))
            for file in files:
                read_into(loaded, file, shape)
        elif path.exists():
            read_into(loaded, path, shape)
        else:
            loaded.failures.append((str(path), "expected an image file or folder, found no such path"))
    return loaded


def list_folder(folder: Path) -> list[Path]:
    """Image and batch files under `folder`, sorted; hidden files and other suffixes are left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and (path.suffix.lower() in IMAGE_SUFFIXES | BATCH_SUFFIXES or IDX_NAME.search(path.name))
    )


def read_into(loaded: LoadedInputs, path: Path, shape: tuple[int, int]) -> None:
    """Add one file's images (or its failure) to `loaded`."""
    try:
        if is_batch(path):
            images = read_batch(path)
            prepared, problems = to_mnist_style_batch(images, shape)
            keep = np.array([index not in problems for index in range(len(images))], dtype=bool)
            loaded.names.extend(f"{path}[{index}]" for index in np.flatnonzero(keep))
            loaded.images.append(prepared[keep])
            loaded.failures.extend((f"{path}[{index}]", problem) for index, problem in problems.items())
        else:
            loaded.images.append(to_mnist_style(read_image(path), shape)[np.newaxis])
            loaded.names.append(str(path))
    except DataFormatError as exc:
        loaded.failures.append((str(path), str(exc).removeprefix(f"{path}: ")))


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
        from mnist_pipeline.store import read_split

        images = read_split(path).images
    elif suffix == ".npz":
        images = read_npz_images(path)
    else:
        from mnist_pipeline.idx import read_idx

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
