"""Read one labelled batch from an ImageFolder, an .npz, an IDX pair or a Parquet file (docs/increments.md).

Images are decoded and prepared by the very functions `predict` uses, so the gate stores what a model will later
see. One unreadable input is a problem line; only a source that cannot be read at all raises DataFormatError.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline.data.dataset import to_int64_labels
from mnist_pipeline.data.idx import read_idx
from mnist_pipeline.data.limits import MAX_BATCH_BYTES, check_image_pixels
from mnist_pipeline.data.sources.local import read_npz_arrays
from mnist_pipeline.errors import DataFormatError, describe_problem
from mnist_pipeline.predict.inputs import IDX_NAME, read_image
from mnist_pipeline.predict.preprocess import MNIST_SHAPE, EmptyImageError, to_grayscale, to_mnist_style_rows
from mnist_pipeline.validation.suite import PIXEL_RANGE

DIGIT_FOLDERS = tuple(str(digit) for digit in range(10))
IDX_LABELS_NAME = re.compile(r"idx1[-.]ubyte(\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelledBatch:
    """Prepared 28x28 uint8 images with their labels and names, what the raw images measured, and the problems.
    `empty` rows had no ink; rows whose raw pixels (`raw_min`/`raw_max`) are outside 0..255 stay all zeros."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    raw_height: np.ndarray
    raw_width: np.ndarray
    raw_min: np.ndarray
    raw_max: np.ndarray
    empty: np.ndarray
    problems: list[str]

    @property
    def rows(self) -> int:
        return len(self.names)


def read_labelled_batch(source: Path) -> LabelledBatch:
    """The batch in `source`, prepared MNIST-style; the kind is told by what `source` is."""
    source = Path(source)
    if source.is_dir():
        idx_files = [path for path in source.iterdir() if IDX_NAME.search(path.name)]
        return read_idx_pair(source, idx_files) if idx_files else read_image_folder(source)
    if not source.exists():
        raise DataFormatError(f"{source}: expected an ImageFolder, .npz, IDX or Parquet source, found no such path")
    suffix = source.suffix.lower()
    if suffix == ".npz":
        arrays = read_npz_arrays(source, ("x", "y"), max_bytes=MAX_BATCH_BYTES)
        return prepare_arrays(source, arrays["x"], arrays["y"])
    if suffix == ".parquet":
        return read_parquet(source)
    if IDX_NAME.search(source.name):
        return read_idx_pair(source.parent, [source])
    raise DataFormatError(
        f"{source}: expected a folder (ImageFolder or IDX pair), an .npz, a .parquet or an IDX images file, "
        f"found a file named {source.name}"
    )


def read_image_folder(folder: Path) -> LabelledBatch:
    """`folder/<digit>/<image file>`: every non-hidden file under a digit folder is tried with Pillow."""
    problems, files = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name in DIGIT_FOLDERS:
            files += [
                (path, int(entry.name))
                for path in sorted(entry.rglob("*"))
                if path.is_file() and not any(part.startswith(".") for part in path.relative_to(entry).parts)
            ]
        else:
            kind = "folder" if entry.is_dir() else "file"
            problems.append(
                f"{entry}: expected only digit folders 0..9 in an ImageFolder, found a {kind} named {entry.name}"
            )
    if not files and not problems:
        raise DataFormatError(f"{folder}: expected an ImageFolder (digit folders 0..9 of images), found no images")
    grays: list[np.ndarray] = []
    labels, names = [], []
    for path, label in files:
        try:
            gray = to_grayscale(read_image(path))
        except Exception as exc:  # one hostile file is its own problem line, whatever its parser raised
            problems.append(f"{path}: {describe_problem(exc).removeprefix(f'{path}: ')}")
            continue
        grays.append(gray)
        labels.append(label)
        names.append(str(path.relative_to(folder)))
    return prepare_images(folder, grays, np.array(labels, dtype=np.int64), names, problems)


def read_idx_pair(folder: Path, image_files: list[Path]) -> LabelledBatch:
    """One IDX images file and the one IDX labels file beside it."""
    label_files = [path for path in folder.iterdir() if IDX_LABELS_NAME.search(path.name)]
    if len(image_files) != 1 or len(label_files) != 1:
        found = ", ".join(sorted(path.name for path in image_files + label_files)) or "none"
        raise DataFormatError(
            f"{folder}: expected one IDX images file (*idx3-ubyte) and one labels file (*idx1-ubyte), found {found}"
        )
    images, labels = (read_idx(path, MAX_BATCH_BYTES) for path in (image_files[0], label_files[0]))
    return prepare_arrays(image_files[0], images, labels)


def read_parquet(path: Path) -> LabelledBatch:
    """A Parquet file in the dataset split schema (or without height/width, of square images)."""
    import pyarrow as pa  # imported only when a Parquet source is read
    import pyarrow.parquet as pq

    from mnist_pipeline.data.store import images_from_table, read_split, read_table

    table = read_table(path, ("label", "image"), MAX_BATCH_BYTES)
    if {"height", "width"} <= set(pq.read_schema(path).names) or table.num_rows == 0:
        split = read_split(path, MAX_BATCH_BYTES) if table.num_rows else None
        images = split.images if split else np.zeros((0, *MNIST_SHAPE), np.uint8)
        return prepare_arrays(path, images, split.labels if split else np.zeros(0, np.int64))
    kind = table.column("image").type
    side = math.isqrt(kind.byte_width) if pa.types.is_fixed_size_binary(kind) else 0
    if side == 0 or side * side != kind.byte_width:
        raise DataFormatError(
            f"{path}: expected height and width columns, or image as fixed_size_binary of a square size, "
            f"found image of type {kind}"
        )
    n = table.num_rows
    table = table.append_column("height", pa.array(np.full(n, side, np.int32)))
    table = table.append_column("width", pa.array(np.full(n, side, np.int32)))
    labels = table.column("label")
    if labels.null_count:
        raise DataFormatError(f"{path}: expected no null labels, found {labels.null_count}")
    return prepare_arrays(path, images_from_table(table, str(path)), labels.to_numpy())


def prepare_arrays(origin: Path, images: np.ndarray, labels: np.ndarray) -> LabelledBatch:
    """Arrays from a batch file: one label per image; per image, values outside 0..255 or fractional ones are not
    converted (a pixel-range failure or a problem line), the others are prepared MNIST-style."""
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, *MNIST_SHAPE)
    if images.ndim != 3:
        raise DataFormatError(f"{origin}: expected images of shape (n, height, width), found shape {images.shape}")
    if images.size and not np.issubdtype(images.dtype, np.number):
        raise DataFormatError(f"{origin}: expected numeric pixels, found dtype {images.dtype}")
    labels = to_int64_labels(np.asarray(labels), f"{origin} labels")
    if len(labels) != len(images):
        raise DataFormatError(f"{origin}: expected one label per image ({len(images)}), found {len(labels)} labels")
    n, height, width = images.shape
    check_image_pixels(height, width, str(origin))
    names = [f"row {index}" for index in range(n)]
    values = images.reshape(n, -1)  # min, max and the integral test in the batch's own dtype: no float64 copy
    raw_min = values.min(axis=1).astype(np.float64) if values.size else np.zeros(n)
    raw_max = values.max(axis=1).astype(np.float64) if values.size else np.zeros(n)
    in_range = (raw_min >= PIXEL_RANGE[0]) & (raw_max <= PIXEL_RANGE[1])
    integral = np.ones(n, dtype=bool)
    if values.size and np.issubdtype(images.dtype, np.floating):
        integral = (values == np.floor(values)).all(axis=1)
    problems = [
        f"{origin}: {names[index]}: expected integral pixel values, found fractional ones (dtype {images.dtype})"
        for index in np.flatnonzero(in_range & ~integral)
    ]
    convertible = in_range & integral
    prepared = np.zeros((n, *MNIST_SHAPE), dtype=np.uint8)
    empty = np.zeros(n, dtype=bool)
    keep = ~(in_range & ~integral)
    if convertible.any():
        rows = np.flatnonzero(convertible)
        ready, failures = to_mnist_style_rows(images[convertible].astype(np.uint8), MNIST_SHAPE)
        prepared[convertible] = ready
        for index, exc in failures.items():
            empty[rows[index]], keep[rows[index]], line = classify_failure(exc, f"{origin}: {names[rows[index]]}")
            problems += [line] if line else []
    return LabelledBatch(
        images=prepared[keep],
        labels=labels[keep],
        names=[name for name, kept in zip(names, keep, strict=True) if kept],
        raw_height=np.full(int(keep.sum()), height, dtype=np.int32),
        raw_width=np.full(int(keep.sum()), width, dtype=np.int32),
        raw_min=raw_min[keep],
        raw_max=raw_max[keep],
        empty=empty[keep],
        problems=problems,
    )


def classify_failure(exc: Exception, name: str) -> tuple[bool, bool, str | None]:
    """What one image's preprocessing failure makes it: (empty, kept, problem line). Only an image without ink is
    empty (kept, to fail the empty-image check); any other failure (a MemoryError, a bug) is a problem line naming
    the input, and the image leaves the batch."""
    if isinstance(exc, EmptyImageError):
        return True, True, None
    return False, False, f"{name}: {describe_problem(exc)}"


def prepare_images(
    folder: Path, grays: list[np.ndarray], labels: np.ndarray, names: list[str], problems: list[str]
) -> LabelledBatch:
    """Decoded grayscale images of any sizes (`names` relative to `folder`), prepared MNIST-style; images of one
    size are prepared together."""
    n = len(grays)
    prepared = np.zeros((n, *MNIST_SHAPE), dtype=np.uint8)
    empty = np.zeros(n, dtype=bool)
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, gray in enumerate(grays):
        by_shape[gray.shape].append(index)
    keep = np.ones(n, dtype=bool)
    for shape, indices in by_shape.items():
        if 0 in shape:
            empty[indices] = True
            continue
        ready, failures = to_mnist_style_rows(np.stack([grays[index] for index in indices]), MNIST_SHAPE)
        prepared[indices] = ready
        for index, exc in failures.items():
            row = indices[index]
            empty[row], keep[row], line = classify_failure(exc, str(folder / names[row]))
            problems += [line] if line else []
    kept_grays = [gray for gray, kept in zip(grays, keep, strict=True) if kept]
    return LabelledBatch(
        images=prepared[keep],
        labels=labels[keep],
        names=[name for name, kept in zip(names, keep, strict=True) if kept],
        raw_height=np.array([gray.shape[0] for gray in kept_grays], dtype=np.int32),
        raw_width=np.array([gray.shape[1] for gray in kept_grays], dtype=np.int32),
        raw_min=np.array([gray.min() if gray.size else 0 for gray in kept_grays], dtype=np.float64),
        raw_max=np.array([gray.max() if gray.size else 0 for gray in kept_grays], dtype=np.float64),
        empty=empty[keep],
        problems=problems,
    )
