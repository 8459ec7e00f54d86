"""Cache keys: a stage whose inputs hash to a recorded key is skipped and its recorded result reused.

Each key covers what decides the stage's result:
- training: everything that changes the weights: the data, the resolved training config, the seed, the train
  limit, the model/training source code, the TensorFlow and Keras versions, TensorFlow's thread-pool size
  (reductions split differently across more threads, so the float results differ), whether TensorFlow's oneDNN
  kernels are on and, for a warm start, the key of the model it starts from (so a fine-tuned model is never taken
  for one trained from scratch);
- validation: the published files' bytes and the suite's code;
- evaluation: the model (its key), the scored split's content (`test` or `new`), the limit, the evaluation code
  and the version of onnxruntime, which scores it.
Code is hashed from source files and versions read from package metadata, so computing a key imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.data.checksums import hash_folder_files
from mnist_pipeline.modeling.hardware import ONEDNN_SWITCH, count_usable_cores, enable_onednn_where_it_helps
from mnist_pipeline.modeling.registry import find_model

# Libraries whose version changes kernels, initialisers or optimizers, hence the weights.
WEIGHT_LIBRARIES = ("tensorflow", "keras")

# Modules whose source decides what any trained model is; editing one invalidates every cached model. A model's
# builder module (from the registry) is hashed too, so editing it invalidates that module's models.
TRAINING_CODE_MODULES = (
    "mnist_pipeline.modeling.augmentation",
    "mnist_pipeline.modeling.training",
)
# Modules whose source decides a validation outcome: the whole validation package, the profile it checks, the
# expected shape, the integrity hashes and which sources count as canonical MNIST (exact counts, 28x28).
VALIDATION_CODE_MODULES = (
    "mnist_pipeline.data.checksums",
    "mnist_pipeline.validation.image_profile",
    "mnist_pipeline.data.image_shape",
    "mnist_pipeline.data.sources",
    "mnist_pipeline.validation",
    "mnist_pipeline.validation.duplicates",
    "mnist_pipeline.validation.gx_runner",
    "mnist_pipeline.validation.integrity",
    "mnist_pipeline.validation.messages",
    "mnist_pipeline.validation.results",
    "mnist_pipeline.validation.suite",
    "mnist_pipeline.validation.validate",
)
# Modules whose source decides an evaluation's numbers and predictions, and how they are recorded.
EVALUATION_CODE_MODULES = (
    "mnist_pipeline.modeling.calibration",
    "mnist_pipeline.modeling.evaluation",
    "mnist_pipeline.modeling.jobs",
    "mnist_pipeline.modeling.model_files",
    "mnist_pipeline.modeling.serving",
)


def hash_module_sources(modules: Iterable[str]) -> str:
    """Hash of the modules' source files (not of their import, which could load TensorFlow)."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        digest.update(name.encode())
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()


def hash_training_code(model: str) -> str:
    """Hash of the training source files and of `model`'s builder module."""
    return hash_module_sources((*TRAINING_CODE_MODULES, find_model(model).builder_module))


def describe_runtime(tf_threads: int | None) -> dict[str, Any]:
    """The runtime facts that change the weights; read from package metadata, so TensorFlow is not imported. The
    oneDNN choice is made here as training makes it (`hardware.choose_onednn`): its kernels round differently."""
    enable_onednn_where_it_helps()
    return {
        **{name: version(name) for name in WEIGHT_LIBRARIES},
        "tf_threads": tf_threads if tf_threads is not None else f"default for {count_usable_cores()} cores",
        "onednn": os.environ.get(ONEDNN_SWITCH, "tensorflow's default"),
    }


def _short_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def compute_training_key(
    model: str,
    fingerprint: str,
    train_config: dict[str, Any],
    seed: int,
    train_limit: int | None,
    tf_threads: int | None,
    warm_start: str | None = None,
) -> str:
    """The identity of one trained model; also its file name under data/models/<model>/. `warm_start` is the key
    of the model it is fine-tuned from (None: from scratch, whose keys stay what they were before warm starts)."""
    payload = {
        "model": model,
        "data": fingerprint,
        "config": train_config,
        "seed": seed,
        "train_limit": train_limit,
        "code": hash_training_code(model),
        "runtime": describe_runtime(tf_threads),
    }
    if warm_start is not None:
        payload["warm_start"] = warm_start
    return _short_hash(payload)


def compute_validation_key(version_dir: Path, image_shape: tuple[int, int]) -> str:
    """Validation's identity: the bytes of every file in the dataset version (so an edited file is re-checked,
    which a content fingerprint read from the manifest would miss), the declared image size and the suite's code."""
    files = hash_folder_files(version_dir)
    code = hash_module_sources(VALIDATION_CODE_MODULES)
    payload = {"files": files, "image_shape": list(image_shape), "code": code, "gx": version("great_expectations")}
    return _short_hash(payload)


def compute_evaluation_key(model_key: str, split_sha256: str, limit: int | None) -> str:
    """Evaluation's identity: the trained model (its key), the scored split's content (`test`, or `new`, the
    accepted increments' test parts), the row limit, the code, the target error its answers are scored at."""
    payload = {
        "target_error": defaults.TARGET_ERROR,
        "model": model_key,
        "split": split_sha256,
        "limit": limit,
        "code": hash_module_sources(EVALUATION_CODE_MODULES),
        "onnxruntime": version("onnxruntime"),
    }
    return _short_hash(payload)
