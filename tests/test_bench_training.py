"""bench/bench_training.py's cross-validation: the folds partition the train split and the test split is never read."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mnist_pipeline.data.store import write_split
from tests.synthetic_digits import make_split

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_training.py"


def load_bench() -> ModuleType:
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


def test_cross_validation_never_reads_the_test_split(tmp_path: Path) -> None:
    (tmp_path / "parquet").mkdir()
    write_split(tmp_path / "parquet" / "train.parquet", make_split(300, seed=5))
    (tmp_path / "parquet" / "test.parquet").write_bytes(b"not parquet: reading it would fail the run")
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


@pytest.mark.parametrize(
    "flags",
    [["--folds", "1"], ["--folds", "3", "--mode", "threads"], ["--folds", "3", "--validation-fraction", "0.1"]],
    ids=["one-fold", "threads", "validation-split"],
)
def test_folds_refuse_what_they_would_ignore(tmp_path: Path, flags: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), *flags], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--folds: expected" in done.stderr
