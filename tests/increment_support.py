"""Helpers for the increment tests: distinct digit-like pictures, written as the sources `add-data` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset
from mnist_pipeline.predict.preprocess import to_mnist_style_batch
from tests.support import make_synthetic_digits


def draw_strokes(rows: int, seed: int, side: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """`rows` pictures of a few random thick strokes (light on black), each one different, labels 0..9 in turn.

    Unlike the block digits of `tests.support`, these stay distinct after MNIST-style preprocessing."""
    rng = np.random.default_rng(seed)
    images = np.zeros((rows, side, side), dtype=np.uint8)
    for index in range(rows):
        picture = Image.new("L", (side, side))
        draw = ImageDraw.Draw(picture)
        points = [tuple(int(v) for v in rng.integers(side // 8, side - side // 8, size=2)) for _ in range(4)]
        draw.line(points, fill=255, width=max(2, side // 10))
        images[index] = np.asarray(picture)
    return images, (np.arange(rows) % 10).astype(np.int64)


def write_image_folder(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """`folder/<label>/<i>.png`, the ImageFolder layout."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(int(label))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / str(int(label)) / f"{index:04d}.png")
    return folder


def publish_base(data_dir: Path, train_rows: int = 600, test_rows: int = 200) -> tuple[DataLayout, str]:
    """A small published base dataset (not canonical MNIST): returns its layout and fingerprint.

    Its test images are MNIST-style, as MNIST's are (preprocessing keeps them as they are), so a batch holding
    them is caught by the leakage check."""
    x_train, y_train = make_synthetic_digits(train_rows, seed=1)
    strokes, y_test = draw_strokes(test_rows, seed=2)
    x_test, problems = to_mnist_style_batch(strokes)
    assert not problems
    dataset = RawDataset(Split(x_train, y_train.astype(np.int64)), Split(x_test, y_test), "npz", "synthetic")
    layout = DataLayout(data_dir)
    return layout, publish_dataset(dataset, layout).manifest["fingerprint"]
