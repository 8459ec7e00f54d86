"""Cache keys for trained models: everything that changes the weights goes into the key.

That is the data, the resolved training config, the seed, the train limit, the model/training source code, the
TensorFlow and Keras versions, and TensorFlow's thread-pool size (reductions split differently across more
threads, so the float results differ): the requested size per model, or TF's default, which follows the cores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Libraries whose version changes kernels, initialisers or optimizers, hence the weights.
WEIGHT_LIBRARIES = ("tensorflow", "keras")

# Modules whose source decides what a trained model is; editing any of them invalidates every cached model.
TRAINING_CODE_MODULES = ("mnist_pipeline.models", "mnist_pipeline.training")


def hash_training_code() -> str:
    """Hash of the model and training source files (not of their import, which would load TensorFlow)."""
    digest = hashlib.sha256()
    for name in TRAINING_CODE_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        digest.update(name.encode())
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()


def describe_runtime(tf_threads: int | None) -> dict[str, Any]:
    """The runtime facts that change the weights; read from package metadata, so TensorFlow is not imported."""
    return {
        **{name: version(name) for name in WEIGHT_LIBRARIES},
        "tf_threads": tf_threads if tf_threads is not None else f"default for {os.cpu_count()} cores",
    }


def compute_training_key(
    model: str,
    fingerprint: str,
    train_config: dict[str, Any],
    seed: int,
    train_limit: int | None,
    tf_threads: int | None,
) -> str:
    """The identity of one trained model; also its file name under data/models/<model>/."""
    payload = {
        "model": model,
        "data": fingerprint,
        "config": train_config,
        "seed": seed,
        "train_limit": train_limit,
        "code": hash_training_code(),
        "runtime": describe_runtime(tf_threads),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
