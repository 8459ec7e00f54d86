"""Saved models: `<name>.keras` plus a `<name>.keras.json` sidecar, each written atomically.

The model is first saved into a hidden staging directory beside the target (Keras insists on a `.keras` name), so
a failure while saving never touches the files in place; the sidecar is renamed into place before the model, so a
present model file always has its complete sidecar beside it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import write_json_atomic


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_model(model: keras.Model, path: Path, sidecar: dict[str, Any]) -> None:
    """Write `path` (.keras, with optimizer state) and its JSON sidecar, replacing any previous pair atomically."""
    if path.suffix != ".keras":
        raise DataFormatError(f"{path}: expected a file name ending in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as staging:
        staged = Path(staging) / path.name
        keras.saving.save_model(model, staged)
        write_json_atomic(sidecar_path(path), sidecar)
        os.replace(staged, path)


def load_model(path: Path) -> keras.Model:
    """Load a model saved by `save_model`; a missing or corrupt file is a DataFormatError naming it."""
    if not path.is_file():
        raise DataFormatError(f"{path}: expected a saved .keras model, found no such file")
    try:
        return keras.saving.load_model(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: expected a .keras model saved by mnist-pipeline, found: {exc}") from exc


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON sidecar of the model at `path`."""
    try:
        return json.loads(sidecar_path(path).read_text())
    except FileNotFoundError as exc:
        raise DataFormatError(f"{sidecar_path(path)}: expected a model sidecar, found no such file") from exc
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{sidecar_path(path)}: expected JSON, found invalid content ({exc})") from exc
