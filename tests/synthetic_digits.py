"""The shared synthetic digits (tests.support) as a Split, the type training and evaluation take."""

from __future__ import annotations

import numpy as np

from mnist_pipeline.data.dataset import Split
from tests.support import make_synthetic_digits


def make_split(rows: int, seed: int = 0) -> Split:
    images, labels = make_synthetic_digits(rows, seed)
    return Split(images=images, labels=labels.astype(np.int64))
