"""Read a saved `.keras` file as data: its layer config and each layer's weight arrays (no pickle, no code)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mnist_pipeline.errors import DataFormatError


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


def weight_groups(class_names: list[str]) -> list[str]:
    """Each layer's group in the weights file: Keras names them by class, numbered from the second of a class on."""
    used: dict[str, int] = {}
    names = []
    for class_name in class_names:
        group = snake_case(class_name)
        used[group] = used.get(group, -1) + 1
        names.append(f"{group}_{used[group]}" if used[group] else group)
    return names
