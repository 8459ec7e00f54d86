"""Saved models: `<key>.keras`, written atomically.

The model is first saved into a hidden staging directory beside the target (Keras insists on a `.keras` name), so
a failure while saving never touches the file in place. What the model is (run, config, provenance) is recorded
in the run's metrics.json, which names the model by its key.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import keras

from mnist_pipeline.errors import DataFormatError


def save_model(model: keras.Model, path: Path) -> None:
    """Write `path` (.keras, with optimizer state), replacing any previous file atomically."""
    if path.suffix != ".keras":
        raise DataFormatError(f"{path}: expected a file name ending in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as staging:
        staged = Path(staging) / path.name
        keras.saving.save_model(model, staged)
        os.replace(staged, path)


def load_model(path: Path) -> keras.Model:
    """Load a model saved by `save_model`; a missing or corrupt file is a DataFormatError naming it."""
    if not path.is_file():
        raise DataFormatError(f"{path}: expected a saved .keras model, found no such file")
    try:
        return keras.saving.load_model(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: expected a .keras model saved by mnist-pipeline, found: {exc}") from exc
