"""Run a saved `.keras` classifier with numpy, so `predict` answers without importing TensorFlow.

Why: importing TensorFlow/Keras takes ~3 s on an idle development machine and over 10 s on a loaded one, which
is more than the 3 s a person should wait for one digit; numpy and h5py import in 0.3 s. A `.keras` file is a
zip of `config.json` (the layers) and `model.weights.h5` (the arrays); both are read as data (no pickle, no
code). The layer types this project's models use are run here, each in its Keras compute dtype: layers computed
in bfloat16 (the `mixed_bfloat16` policy) have their inputs, weights and outputs rounded to bfloat16 as Keras
does, so the numbers match Keras' to rounding (tests/test_predict_runner.py compares them). A model with any
other layer, or that is not a Sequential, is run by Keras instead (`KerasClassifier`), slower to start but exact.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from mnist_pipeline.errors import DataFormatError

# Images per forward chunk: bounds the convolution's working memory (~90 MB for the CNN) without slowing it.
CHUNK = 1024


class Classifier(Protocol):
    """What prediction needs from a model: the image shape it takes and the head's logits for uint8 images."""

    input_shape: tuple[int, int]

    def logits(self, images: np.ndarray) -> np.ndarray: ...


class UnsupportedModel(Exception):
    """The model uses something the numpy runner does not implement; Keras runs it instead."""


def load_classifier(path: Path) -> Classifier:
    """The numpy runner for `path` when it supports every layer, else Keras; a bad file names itself."""
    config, weights = read_keras_file(path)
    try:
        return NumpyClassifier.from_config(config, weights)
    except UnsupportedModel:
        return KerasClassifier(path)


def read_keras_file(path: Path) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """The model config and each weight group's arrays (`layers/<group>` -> [kernel, bias, ...])."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights_bytes = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(weights_bytes), "r") as weights_file:
            layers = weights_file["layers"]
            weights = {name: [np.asarray(var[()]) for _, var in sorted_vars(layers[name])] for name in layers}
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected a saved .keras model, found no such file") from exc
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: expected a .keras model saved by mnist-pipeline, found: {exc}") from exc
    return config, weights


def sorted_vars(group: h5py.Group) -> list[tuple[int, h5py.Dataset]]:
    """A layer's variables in creation order (kernel before bias): `vars/0`, `vars/1`, ..."""
    variables = group.get("vars", {})
    return sorted((int(name), variables[name]) for name in variables)


def snake_case(name: str) -> str:
    """Keras' name for a layer's weight group: its class name in snake case (`MaxPooling2D` -> `max_pooling2d`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32, in place: pass a temporary."""
    bits = values.view(np.uint32)
    carry = bits >> 16
    carry &= 1
    carry += 0x7FFF
    bits += carry
    bits &= 0xFFFF0000
    return values


def weight_groups(class_names: list[str]) -> list[str]:
    """Each layer's group in the weights file: Keras names them by class, numbered from the second of a class on."""
    used: dict[str, int] = {}
    names = []
    for class_name in class_names:
        group = snake_case(class_name)
        used[group] = used.get(group, -1) + 1
        names.append(f"{group}_{used[group]}" if used[group] else group)
    return names


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


def build_step(
    kind: str,
    config: dict[str, Any],
    weights: list[np.ndarray],
    is_head: bool,
    pool: tuple[int, int] | None,
    input_precision: str,
) -> Callable[[np.ndarray], np.ndarray]:
    """One layer as a function on float32 arrays; the head returns its pre-activation values (the logits).

    `pool` is the pool size of a MaxPooling2D that directly follows a Conv2D, fused into it: pooling the raw
    convolution first and then rounding, adding the bias and applying ReLU gives exactly the same numbers (each of
    those steps is non-decreasing, so it commutes with max), on a quarter of the values. Inputs are rounded to
    the layer's precision only when they come in wider (uint8 pixels fit every precision exactly).
    """
    compute = precision(config)
    cast = rounder(compute)
    exact = input_precision in (compute, "uint8") or compute == "float32"
    cast_in = rounder("float32") if exact else cast
    activation_name = "linear" if is_head else config.get("activation", "linear")
    if activation_name not in ACTIVATIONS:
        raise UnsupportedModel(f"activation {activation_name!r}")
    activation = ACTIVATIONS[activation_name]
    if kind == "Rescaling":
        scale, offset = config["scale"], config["offset"]
        if not isinstance(scale, int | float) or not isinstance(offset, int | float):
            raise UnsupportedModel("per-channel rescaling")
        scale32, offset32 = cast(np.float32([scale])), cast(np.float32([offset]))
        return lambda values: cast(cast(cast_in(values) * scale32) + offset32)
    if kind == "Reshape":
        target = tuple(config["target_shape"])
        return lambda values: values.reshape(values.shape[0], *target)
    if kind == "Flatten":
        return lambda values: values.reshape(values.shape[0], -1)
    if kind == "Dropout":
        return lambda values: values
    if kind == "Dense" and len(weights) == 2:
        kernel, bias = (cast(np.array(array, dtype=np.float32)) for array in weights)
        return lambda values: activation(cast(cast(cast_in(values) @ kernel) + bias))
    if kind == "Conv2D" and len(weights) == 2 and _plain_conv(config):
        kernel, bias = (cast(np.array(array, dtype=np.float32)) for array in weights)
        strides = tuple(config["strides"])

        def convolve(values: np.ndarray) -> np.ndarray:
            out = np.moveaxis(cast(conv2d(cast_in(values), kernel, strides, pool or (1, 1))), 0, -1)
            return activation(cast(out + bias))

        return convolve
    if kind == "MaxPooling2D" and _plain_pool(config):
        size = tuple(config["pool_size"])
        return lambda values: np.moveaxis(max_pool(np.moveaxis(cast_in(values), -1, 0), size), 0, -1)
    raise UnsupportedModel(f"layer {kind} with this configuration")


def _plain_conv(config: dict[str, Any]) -> bool:
    return (
        config.get("padding") == "valid"
        and config.get("data_format") == "channels_last"
        and tuple(config.get("dilation_rate", (1, 1))) == (1, 1)
        and config.get("groups", 1) == 1
    )


def _plain_pool(config: dict[str, Any]) -> bool:
    pool, strides = tuple(config.get("pool_size", ())), tuple(config.get("strides") or config.get("pool_size", ()))
    return config.get("padding") == "valid" and config.get("data_format") == "channels_last" and pool == strides


class NumpyClassifier:
    """A Sequential model of supported layers, run with numpy; the last layer must be a Dense head."""

    def __init__(self, input_shape: tuple[int, int], steps: list[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.input_shape = input_shape
        self.steps = steps

    @classmethod
    def from_config(cls, config: dict[str, Any], weights: dict[str, list[np.ndarray]]) -> NumpyClassifier:
        """Build the steps from `config.json` and the weight groups; UnsupportedModel when it cannot."""
        if config.get("class_name") != "Sequential":
            raise UnsupportedModel(f"model class {config.get('class_name')!r}")
        layers = config["config"]["layers"]
        if not layers or layers[0]["class_name"] != "InputLayer" or layers[-1]["class_name"] != "Dense":
            raise UnsupportedModel("expected an InputLayer first and a Dense head last")
        input_shape = tuple(layers[0]["config"]["batch_shape"][1:])
        if len(input_shape) != 2:
            raise UnsupportedModel(f"input shape {input_shape}")
        groups = weight_groups([layer["class_name"] for layer in layers[1:]])
        steps, position, values_precision = [], 1, "uint8"
        while position < len(layers):
            kind, config = layers[position]["class_name"], layers[position]["config"]
            following = layers[position + 1] if position + 1 < len(layers) else None
            pool = None
            if (
                kind == "Conv2D"
                and following is not None
                and following["class_name"] == "MaxPooling2D"
                and _plain_pool(following["config"])
                and config.get("activation") in ACTIVATIONS
            ):
                pool = tuple(following["config"]["pool_size"])
            is_head = position == len(layers) - 1
            group = weights.get(groups[position - 1], [])
            steps.append(build_step(kind, config, group, is_head, pool, values_precision))
            values_precision = precision(layers[position + 1]["config"] if pool else config)
            position += 2 if pool else 1
        return cls((int(input_shape[0]), int(input_shape[1])), steps)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The head's pre-activation outputs (float64) for uint8 images (n, height, width), in chunks."""
        chunks = []
        for start in range(0, len(images), CHUNK):
            values = images[start : start + CHUNK].astype(np.float32)
            for step in self.steps:
                values = step(values)
            chunks.append(values.astype(np.float64))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))


class KerasClassifier:
    """Any saved model, run by Keras (imports TensorFlow: seconds to start)."""

    def __init__(self, path: Path) -> None:
        from mnist_pipeline.model_files import load_model

        self.model = load_model(path)
        self.input_shape = tuple(self.model.input_shape[1:3])

    def logits(self, images: np.ndarray) -> np.ndarray:
        from mnist_pipeline.evaluation import compute_logits

        return compute_logits(self.model, images)
