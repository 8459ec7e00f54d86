"""Run a saved `.keras` classifier with numpy, so `predict` answers without importing TensorFlow.

Why: importing TensorFlow/Keras takes ~3 s on an idle development machine and over 10 s on a loaded one, which
is more than the 3 s a person should wait for one digit; numpy and h5py import in 0.3 s. A `.keras` file is a
zip of `config.json` (the layers) and `model.weights.h5` (the arrays); `keras_file` reads both as data (no
pickle, no code). The layer types this project's models use are run here (kernels in `numpy_ops`), each in its
Keras compute dtype: layers computed in bfloat16 (the `mixed_bfloat16` policy) have their inputs, weights and
outputs rounded to bfloat16 as Keras does, so the numbers match Keras' to rounding (tests/test_predict_runner.py
compares them). A model with any other layer, or that is not a Sequential, is run by Keras (`KerasClassifier`),
slower to start but exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mnist_pipeline.predict.keras_file import read_keras_file, weight_groups
from mnist_pipeline.predict.numpy_ops import ACTIVATIONS, UnsupportedModel, conv2d, max_pool, precision, rounder

# Images per forward chunk: bounds the convolution's working memory (~90 MB for the CNN) without slowing it.
CHUNK = 1024


class Classifier(Protocol):
    """What prediction needs from a model: the image shape it takes and the head's logits for uint8 images."""

    input_shape: tuple[int, int]

    def logits(self, images: np.ndarray) -> np.ndarray: ...


def load_classifier(path: Path) -> Classifier:
    """The numpy runner for `path` when it supports every layer, else Keras; a bad file names itself."""
    config, weights = read_keras_file(path)
    try:
        return NumpyClassifier.from_config(config, weights)
    except UnsupportedModel:
        return KerasClassifier(path)


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
        from mnist_pipeline.modeling.model_files import load_model

        self.model = load_model(path)
        self.input_shape = tuple(self.model.input_shape[1:3])

    def logits(self, images: np.ndarray) -> np.ndarray:
        from mnist_pipeline.modeling.evaluation import compute_logits

        return compute_logits(self.model, images)
