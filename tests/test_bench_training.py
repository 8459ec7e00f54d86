"""bench/bench_training.py's cross-validation: the folds partition the train split and the test split is never read."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mnist_pipeline.data.store import write_split
from tests.synthetic_digits import make_split

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_training.py"


def load_bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folds_hold_out_every_image_once_and_train_on_the_rest() -> None:
    train = make_split(103, seed=3)
    keys = {image.tobytes() for image in train.images}
    assert len(keys) == 103, "synthetic images must be distinct for this check"
    pairs = list(load_bench().split_folds(train, 4, seed=7))
    held_keys = [{image.tobytes() for image in held.images} for _, held in pairs]
    assert sorted(len(k) for k in held_keys) == [25, 26, 26, 26]
    assert set().union(*held_keys) == keys
    for (fit, held), held_set in zip(pairs, held_keys, strict=True):
        assert {image.tobytes() for image in fit.images} == keys - held_set
        assert fit.rows + held.rows == 103
    again = list(load_bench().split_folds(train, 4, seed=7))
    assert all(np.array_equal(a[1].images, b[1].images) for a, b in zip(pairs, again, strict=True))


def test_cross_validation_runs_without_a_test_split(tmp_path: Path) -> None:
    (tmp_path / "parquet").mkdir()
    write_split(tmp_path / "parquet" / "train.parquet", make_split(300, seed=5))
    command = [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--models", "ann_no_hidden"]
    done = subprocess.run(
        [*command, "--epochs", "1", "--folds", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[0])
    assert len(result["fold_accuracy"]) == 3
    assert result["cv_accuracy"] == round(float(np.mean(result["fold_accuracy"])), 5)
    assert result["config"]["validation_fraction"] == 0.0 and result["config"]["early_stopping_patience"] is None
    assert not (tmp_path / "parquet" / "test.parquet").exists()


def test_fewer_than_two_folds_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--folds", "1"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "--folds: expected at least 2, found 1" in done.stderr
