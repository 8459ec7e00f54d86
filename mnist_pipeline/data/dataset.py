"""The in-memory dataset every source produces: uint8 images (n, h, w) and integer labels per split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_pipeline.errors import DataFormatError

SPLITS = ("train", "test")
# A grown version's extra evaluation split: the test parts of the accepted increments (absent when there are none).
NEW_SPLIT = "new"


@dataclass(frozen=True)
class Split:
    """One split: images uint8 (n, height, width), labels int64 (n,), in canonical order."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])

    def head(self, limit: int | None) -> Split:
        """The first `limit` rows (all when None): the deterministic subset behind --train/--test-limit."""
        return self if limit is None else Split(images=self.images[:limit], labels=self.labels[:limit])


@dataclass(frozen=True)
class RawDataset:
    """Train and test splits plus where they came from; a grown version also has the `new` split."""

    train: Split
    test: Split
    source: str
    origin: str
    new: Split | None = None

    def split(self, name: str) -> Split:
        return {"train": self.train, "test": self.test, NEW_SPLIT: self.new}[name]

    def split_names(self) -> tuple[str, ...]:
        return SPLITS if self.new is None else (*SPLITS, NEW_SPLIT)


def to_uint8_images(values: np.ndarray, origin: str) -> np.ndarray:
    """Return `values` as uint8 without changing any pixel; refuse what does not fit exactly."""
    if values.ndim != 3:
        raise DataFormatError(f"{origin}: expected images of shape (n, height, width), found shape {values.shape}")
    if values.dtype == np.uint8:
        return values
    if values.size and not np.issubdtype(values.dtype, np.number):
        raise DataFormatError(f"{origin}: expected numeric pixels, found dtype {values.dtype}")
    as_u8 = values.astype(np.uint8)
    if not np.array_equal(as_u8, values):
        lo, hi = (values.min(), values.max()) if values.size else (0, 0)
        raise DataFormatError(
            f"{origin}: expected integral pixels in 0..255, found dtype {values.dtype} with range {lo}..{hi}"
        )
    return as_u8


def to_int64_labels(values: np.ndarray, origin: str) -> np.ndarray:
    """Return labels as a 1-D int64 array; range checks belong to validation, not ingestion."""
    if values.ndim != 1:
        raise DataFormatError(f"{origin}: expected labels of shape (n,), found shape {values.shape}")
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise DataFormatError(f"{origin}: expected integer labels, found dtype {values.dtype}")
    return values.astype(np.int64, copy=False)


def make_split(images: np.ndarray, labels: np.ndarray, images_origin: str, labels_origin: str) -> Split:
    """Build a Split, checking that there is exactly one label per image."""
    images = to_uint8_images(images, images_origin)
    labels = to_int64_labels(labels, labels_origin)
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{images_origin}: expected as many images as labels in {labels_origin} "
            f"({labels.shape[0]}), found {images.shape[0]} images"
        )
    return Split(images=images, labels=labels)
