"""Saved models: `<key>.keras` (to resume, inspect or retrain) and `<key>.onnx` beside it (to score), both atomic.

The ONNX file is what evaluation, `predict` and batch scoring run (`modeling.serving`). The `.keras` is first
saved into a hidden staging directory beside the target (Keras insists on a `.keras` name), then the ONNX file is
written, then the `.keras` is renamed into place: a failure while saving touches neither file, and a `.keras`
never lacks its ONNX file. What the model is (run, config, provenance) is recorded in the run's metrics.json,
which names the model by its key.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import keras

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import atomic_path, sync_path
from mnist_pipeline.modeling.serving import Engine, check_keras_archive, serving_file

# Keras' numpy-2 patch of tf2onnx probes `np.object`, which warns on every export: Keras' business, not the user's.
warnings.filterwarnings("ignore", message="In the future `np.object` will be defined", category=FutureWarning)


def save_model(model: keras.Model, path: Path) -> None:
    """Write `path` (.keras, with optimizer state) and its ONNX file, each replacing any previous one atomically."""
    if path.suffix != ".keras":
        raise DataFormatError(f"{path}: expected a file name ending in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as staging:
        staged = Path(staging) / path.name
        keras.saving.save_model(model, staged)
        sync_path(staged)
        export_serving_file(model, serving_file(path))
        os.replace(staged, path)
        sync_path(path.parent)


def load_model(path: Path) -> keras.Model:
    """Load a model saved by `save_model`, uncompiled, for its weights and graph (export, inspection); a missing
    or corrupt file is a DataFormatError naming it. Its zip members' declared sizes are checked first, and Keras
    runs in safe mode (no deserialised lambdas: loading a file never runs code from it)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: expected a saved .keras model, found no such file")
    check_keras_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: expected a .keras model saved by mnist-pipeline, found: {exc}") from exc


def to_serving_model(model: keras.Model) -> keras.Model:
    """The same weights in float32 (ONNX export needs a float32 policy; a bfloat16-trained model keeps float32
    variables, so nothing is lost) with the head's activation left out, so the output is the head's logits."""
    head = model.layers[-1]

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = {**layer.get_config(), "dtype": "float32"}
        if layer is head:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    serving = keras.models.clone_model(model, clone_function=clone_layer)
    serving.set_weights(model.get_weights())
    return serving


def export_serving_file(model: keras.Model, path: Path) -> None:
    """Write the serving model's ONNX file to `path` atomically (Keras' own export, through tf2onnx)."""
    (image,) = model.inputs
    signature = [keras.InputSpec(shape=image.shape, dtype=image.dtype, name="pixels")]
    with atomic_path(path) as tmp:
        to_serving_model(model).export(tmp, format="onnx", verbose=False, input_signature=signature)


def to_engine(model: keras.Model) -> Engine:
    """An in-memory model as the engine its saved ONNX file would be (for studies and tests that never save)."""
    with tempfile.TemporaryDirectory(prefix="mnist-serving-") as folder:
        path = Path(folder) / "model.onnx"
        export_serving_file(model, path)
        return Engine(path)
