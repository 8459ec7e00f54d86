"""The training cache key changes with everything that changes the weights, and only with that."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mnist_pipeline
from mnist_pipeline.modeling.hardware import ONEDNN_SWITCH
from mnist_pipeline.modeling.profiles import resolve_config
from mnist_pipeline.runs import cache_keys
from mnist_pipeline.runs.cache_keys import compute_training_key

CONFIG = resolve_config("default", "cnn").to_dict()
BASE = {"model": "cnn", "fingerprint": "f" * 64, "train_config": CONFIG, "seed": 42, "train_limit": None}


def key(**changes: object) -> str:
    return compute_training_key(**{**BASE, "tf_threads": None, **changes})  # type: ignore[arg-type]


def test_same_inputs_same_key_and_each_input_changes_it() -> None:
    assert key() == key()
    variants = [
        key(seed=43),
        key(train_limit=1000),
        key(fingerprint="e" * 64),
        key(train_config={**CONFIG, "epochs": 6}),
        key(tf_threads=1),
        key(tf_threads=2),
    ]
    assert len({key(), *variants}) == 1 + len(variants)


def test_the_tensorflow_and_keras_versions_are_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another TensorFlow cannot be installed beside this one, so the version lookup is replaced."""
    before = key()
    real_version = cache_keys.version
    monkeypatch.setattr(cache_keys, "version", lambda name: "9.9.9" if name == "keras" else real_version(name))
    assert key() != before


def test_the_onednn_choice_is_part_of_the_key_and_a_users_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN's kernels round differently from TensorFlow's own: a model trained with them is another model."""
    monkeypatch.setenv(ONEDNN_SWITCH, "0")
    without = key()
    monkeypatch.setenv(ONEDNN_SWITCH, "1")
    assert key() != without
    assert os.environ[ONEDNN_SWITCH] == "1"


def key_in_subprocess(package_parent: Path) -> str:
    """The key as a fresh process computes it when `mnist_pipeline` is imported from `package_parent`."""
    code = (
        "import json, sys, mnist_pipeline\n"
        "from mnist_pipeline.runs.cache_keys import compute_training_key\n"
        f"assert mnist_pipeline.__file__.startswith({str(package_parent)!r}), mnist_pipeline.__file__\n"
        f"config = json.loads({json.dumps(CONFIG)!r})\n"
        "print(compute_training_key('cnn', 'f' * 64, config, 42, None, None))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin"},
        cwd=package_parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_editing_the_training_code_changes_the_key(tmp_path: Path) -> None:
    source = Path(mnist_pipeline.__file__).parent
    copy = tmp_path / "copy"
    shutil.copytree(source, copy / "mnist_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    unchanged = key_in_subprocess(copy)
    assert unchanged == key()
    training = copy / "mnist_pipeline" / "modeling" / "training.py"
    training.write_text(
        training.read_text().replace("rng.permutation(split.rows)", "rng.permutation(split.rows)[::-1]")
    )
    assert key_in_subprocess(copy) != unchanged
