"""Cache keys for trained models: same data, spec, training config, seed and code -> same key."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

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


def compute_training_key(
    model: str, fingerprint: str, train_config: dict[str, Any], seed: int, train_limit: int | None
) -> str:
    """The identity of one trained model; also its file name under data/models/<model>/."""
    payload = {
        "model": model,
        "data": fingerprint,
        "config": train_config,
        "seed": seed,
        "train_limit": train_limit,
        "code": hash_training_code(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
