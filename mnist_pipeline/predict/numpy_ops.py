"""The numeric kernels of the numpy runner: dtype-policy rounding, activations, convolution, max pooling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class UnsupportedModel(Exception):
    """The model uses something the numpy runner does not implement; Keras runs it instead."""


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32, in place: pass a temporary."""
    bits = values.view(np.uint32)
    carry = bits >> 16
    carry &= 1
    carry += 0x7FFF
    bits += carry
    bits &= 0xFFFF0000
    return values


PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16", "bfloat16": "bfloat16"}
PRECISIONS |= {"mixed_float16": "float16", "float16": "float16"}


def precision(layer_config: dict[str, Any]) -> str:
    """The dtype a layer computes in under its Keras dtype policy: float32, bfloat16 or float16."""
    policy = layer_config.get("dtype")
    name = policy.get("config", {}).get("name") if isinstance(policy, dict) else policy
    if (name or "float32") not in PRECISIONS:
        raise UnsupportedModel(f"dtype policy {name!r}")
    return PRECISIONS[name or "float32"]


def rounder(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Round float32 values to `name`'s precision and back (in place for bfloat16), as Keras would compute them."""
    if name == "bfloat16":
        return to_bfloat16
    if name == "float16":
        return lambda values: values.astype(np.float16).astype(np.float32)
    return lambda values: values


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda values: values,
    "relu": lambda values: np.maximum(values, 0),
}


def conv2d(
    values: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], pool: tuple[int, int] = (1, 1)
) -> np.ndarray:
    """'valid' convolution of channels-last images, max-pooled over `pool`, returned channels first.

    Output (filters, n, out_h, out_w). Each pool offset is one matrix product of (filters, taps) by (taps, pixels),
    computed only at the pixels that offset pools, and the products are maxed: no full-size convolution output is
    ever stored, and numpy's BLAS is ~10x faster this way round than with the few taps as the inner dimension.
    """
    rows, cols, channels, filters = kernel.shape
    n, height, width = values.shape[:3]
    step_y, step_x = strides[0] * pool[0], strides[1] * pool[1]
    out_h = ((height - rows) // strides[0] + 1) // pool[0]
    out_w = ((width - cols) // strides[1] + 1) // pool[1]
    weights = kernel.reshape(rows * cols * channels, filters).T
    pooled = None
    for py in range(pool[0]):
        for px in range(pool[1]):
            top, left = py * strides[0], px * strides[1]
            taps = np.stack(
                [
                    values[
                        :,
                        top + dy : top + dy + step_y * out_h : step_y,
                        left + dx : left + dx + step_x * out_w : step_x,
                        c,
                    ]
                    for dy in range(rows)
                    for dx in range(cols)
                    for c in range(channels)
                ]
            )
            product = weights @ taps.reshape(len(taps), -1)
            pooled = product if pooled is None else np.maximum(pooled, product, out=pooled)
    return pooled.reshape(filters, n, out_h, out_w)


def max_pool(values: np.ndarray, pool: tuple[int, int]) -> np.ndarray:
    """Non-overlapping 'valid' max pooling (stride = pool size) over the last two axes.

    An elementwise maximum of the pool's strided views: numpy reduces short strided axes ~10x slower.
    """
    height, width = values.shape[-2:]
    out_h, out_w = height // pool[0], width // pool[1]
    views = [
        values[..., dy : out_h * pool[0] : pool[0], dx : out_w * pool[1] : pool[1]]
        for dy in range(pool[0])
        for dx in range(pool[1])
    ]
    result = views[0].copy()
    for view in views[1:]:
        np.maximum(result, view, out=result)
    return result
