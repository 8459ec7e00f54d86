"""The expected image size: 28x28 for every source unless the user declares another with `--image-shape HxW`.

A dataset of another size is refused at ingest unless declared; the declared size is recorded in the manifest,
checked by validation and used by training.
"""

from __future__ import annotations

import re
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import RawDataset
from mnist_pipeline.errors import DataFormatError

_PATTERN = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_image_shape(value: Any) -> tuple[int, int]:
    """Accept 'HxW' (CLI, deployment parameter) or a (height, width) pair, both sides positive; else a ValueError,
    which RunConfig reports naming the option."""
    if value is None:
        return defaults.IMAGE_SHAPE
    match = _PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match:
        shape = (int(match[1]), int(match[2]))
    elif isinstance(value, list | tuple) and len(value) == 2 and all(type(side) is int for side in value):
        shape = (value[0], value[1])
    else:
        raise ValueError(f"expected HEIGHTxWIDTH such as 28x28, found {value!r}")
    if min(shape) <= 0:
        raise ValueError(f"expected positive sides, found {format_image_shape(shape)}")
    return shape


def format_image_shape(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def check_dataset_shape(dataset: RawDataset, expected: tuple[int, int]) -> None:
    """Refuse a dataset whose images are not the expected size, naming the option that declares another."""
    for name in ("train", "test"):
        found = tuple(int(side) for side in dataset.split(name).images.shape[1:])
        if found != tuple(expected) and dataset.split(name).rows:
            raise DataFormatError(
                f"{dataset.origin}: expected {name} images of {format_image_shape(expected)} pixels, found "
                f"{format_image_shape(found)} (declare another size with --image-shape {format_image_shape(found)})"
            )
