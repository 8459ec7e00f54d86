"""Training profiles, repeatable training, and atomic model files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import mnist_pipeline.modeling.model_files as model_files
from mnist_pipeline.errors import DataFormatError, PipelineError
from mnist_pipeline.modeling.calibration import held_out_rows
from mnist_pipeline.modeling.hardware import resolve_precision
from mnist_pipeline.modeling.model_files import load_model, save_model
from mnist_pipeline.modeling.profiles import TrainConfig, resolve_config
from mnist_pipeline.modeling.training import EpochReport, _split_validation, configure_tensorflow, train_model
from tests.synthetic_digits import make_split

QUICK = TrainConfig(profile="test", epochs=1, batch_size=64)


@pytest.fixture(scope="module", autouse=True)
def deterministic_tensorflow() -> None:
    configure_tensorflow(threads=None, deterministic=True)


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def test_seed_profile_is_the_seed_study_training() -> None:
    for model, epochs in {"ann_no_hidden": 5, "ann_hidden_100": 5, "cnn": 10}.items():
        config = resolve_config("seed", model)
        assert (config.epochs, config.batch_size, config.learning_rate) == (epochs, 32, 1e-3)
        assert (config.lr_schedule, config.validation_fraction, config.early_stopping_patience) == ("constant", 0, None)
        assert config.precision == "float32"


def test_default_profile_early_stops_on_a_validation_split() -> None:
    for model in ("ann_no_hidden", "ann_hidden_100", "cnn"):
        config = resolve_config("default", model)
        assert config.profile == "default"
        assert 0 < config.validation_fraction < 0.5 and config.early_stopping_patience is not None


def test_epochs_override_and_round_trip_through_json() -> None:
    config = resolve_config("default", "cnn", epochs=3)
    assert config.epochs == 3
    assert replace(config, epochs=resolve_config("default", "cnn").epochs) == resolve_config("default", "cnn")
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_profile_model_or_bad_settings_are_pipeline_errors() -> None:
    with pytest.raises(PipelineError, match=r"seed, default, best.*'fast'"):
        resolve_config("fast", "cnn")
    with pytest.raises(PipelineError, match="'vgg'"):
        resolve_config("seed", "vgg")
    with pytest.raises(PipelineError, match="lr_schedule"):
        TrainConfig(profile="x", epochs=1, lr_schedule="linear")
    with pytest.raises(PipelineError, match="validation split"):
        TrainConfig(profile="x", epochs=1, early_stopping_patience=2)
    with pytest.raises(PipelineError, match="warmup_epochs"):
        TrainConfig(profile="x", epochs=1, warmup_epochs=1.0)
    with pytest.raises(PipelineError):
        resolve_config("seed", "cnn", epochs=0)


def test_configure_tensorflow_twice_keeps_the_first_pools_and_says_so() -> None:
    """In a fresh process (this one's TF runtime is already up): the first call sizes the pools, the second
    cannot change them and logs a warning instead of failing."""
    code = (
        "import logging, tensorflow as tf\n"
        "from tensorflow.python.framework import config as tf_config\n"
        "from mnist_pipeline.modeling.training import configure_tensorflow\n"
        "logging.basicConfig(level=logging.WARNING, format='%(name)s: %(message)s')\n"
        "configure_tensorflow(threads=2, deterministic=True)\n"
        "tf.constant(1.0) + 1.0\n"
        "configure_tensorflow(threads=1, deterministic=True)\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads(),"
        " tf_config.is_op_determinism_enabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["2", "2", "True"]
    assert "already initialised with 2 intra-op threads; keeping them" in done.stderr


DEFAULT_PROFILE = {
    "ann_no_hidden": {"epochs": 10, "batch_size": 512, "learning_rate": 0.01, "warmup_epochs": 0.0},
    "ann_hidden_100": {"epochs": 8, "batch_size": 512, "learning_rate": 0.01, "warmup_epochs": 0.0},
    "cnn": {"epochs": 5, "batch_size": 256, "learning_rate": 0.005, "warmup_epochs": 0.3},
}
DEFAULT_SHARED = {
    "lr_schedule": "cosine",
    "validation_fraction": 0.05,
    "early_stopping_patience": 3,
    "increment_share": 0.1,
}


@pytest.mark.parametrize("model", DEFAULT_PROFILE)
def test_default_profile_values_are_pinned(model: str) -> None:
    """docs/training.md's and bench/RESULTS.md's numbers were measured with exactly these settings."""
    resolved = resolve_config("default", model).to_dict()
    expected = {"profile": "default", **DEFAULT_SHARED, **DEFAULT_PROFILE[model]}
    assert {key: resolved[key] for key in expected} == expected
    assert resolved["precision"] == (resolve_precision("auto").precision if model == "cnn" else "float32")
    moves = (1.0, 5.0) if model == "cnn" else (0.0, 0.0)
    assert (resolved["augment_shift"], resolved["augment_rotation"]) == moves


def test_same_seed_same_weights_other_seed_differs() -> None:
    data = make_split(1000)
    first = train_model("cnn", QUICK, data, seed=3)
    again = train_model("cnn", QUICK, data, seed=3)
    other = train_model("cnn", QUICK, data, seed=4)
    assert weights_digest(first.model) == weights_digest(again.model)
    assert first.history == again.history
    assert weights_digest(first.model) != weights_digest(other.model)


def test_same_weights_in_a_fresh_process(tmp_path: Path) -> None:
    data = make_split(1000)
    np.savez(tmp_path / "data.npz", images=data.images, labels=data.labels)
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
import numpy as np
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.modeling.training import TrainConfig, configure_tensorflow, train_model
from tests.test_training import weights_digest
configure_tensorflow(threads=None, deterministic=True)
arrays = np.load({str(tmp_path / "data.npz")!r})
split = Split(images=arrays["images"], labels=arrays["labels"])
config = TrainConfig(profile="test", epochs=1, batch_size=64)
print(weights_digest(train_model("ann_hidden_100", config, split, 5).model))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == weights_digest(train_model("ann_hidden_100", QUICK, data, 5).model)


def test_progress_history_and_early_stopping() -> None:
    reports: list[EpochReport] = []
    config = TrainConfig(
        profile="test",
        epochs=4,
        batch_size=100,
        learning_rate=3e-3,
        lr_schedule="cosine",
        warmup_epochs=0.5,
        validation_fraction=0.2,
        early_stopping_patience=1,
    )
    result = train_model("ann_no_hidden", config, make_split(1000), seed=1, on_epoch=reports.append)
    assert [r.epoch for r in reports] == list(range(1, result.epochs_run + 1))
    assert all(r.epochs == 4 and r.seconds > 0 for r in reports)
    assert set(reports[0].metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 1 <= result.epochs_run <= 4
    assert result.history["val_loss"][result.best_epoch - 1] == min(result.history["val_loss"])
    assert all(len(result.history[key]) == result.epochs_run for key in ("loss", "val_accuracy"))
    assert result.history["accuracy"][-1] > 0.5
    assert result.started_at.endswith("+00:00") and result.started_at <= result.finished_at


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    data = make_split(200)
    model = train_model("ann_no_hidden", QUICK, data, seed=0).model
    path = tmp_path / "models" / "ann.keras"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(data.images, verbose=0), model.predict(data.images, verbose=0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["ann.keras", "ann.onnx"]


def test_failed_save_keeps_the_previous_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_split(200)
    path = tmp_path / "ann.keras"
    save_model(train_model("ann_no_hidden", QUICK, data, seed=0).model, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    newer = train_model("ann_no_hidden", QUICK, data, seed=1).model

    def fail_halfway(_model: object, target: Path) -> None:
        Path(target).write_bytes(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(model_files.keras.saving, "save_model", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_model(newer, path)
    monkeypatch.undo()
    assert {p.name for p in tmp_path.iterdir()} == set(before)
    assert (tmp_path / "ann.keras").read_bytes() == before["ann.keras"]
    load_model(path)


def test_load_names_a_missing_or_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"absent\.keras.*no such file"):
        load_model(tmp_path / "absent.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match=r"corrupt\.keras"):
        load_model(corrupt)


def test_validation_split_partitions_train_into_the_rows_calibration_reads() -> None:
    data = make_split(200)
    kept, held = _split_validation(data, 0.1, 0)
    assert (len(kept), len(held)) == (180, 20)
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(200))
    np.testing.assert_array_equal(held, held_out_rows(200, 0.1, 0))
    assert len(_split_validation(data, 0.0, 0)[1]) == 0
    with pytest.raises(PipelineError, match="leave none to train on"):
        _split_validation(make_split(2), 0.9, 0)


def test_parallel_threads_train_the_same_weights_as_sequential() -> None:
    data = make_split(600)
    names = ["ann_hidden_100", "cnn"]
    sequential = [weights_digest(train_model(name, QUICK, data, seed=2).model) for name in names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(lambda name: weights_digest(train_model(name, QUICK, data, seed=2).model), names))
    assert parallel == sequential


def test_input_pipelines_run_without_tf_data_autotuning() -> None:
    """Autotuning's model thread is what made `fit` return long after its last epoch (bench/RESULTS.md)."""
    from mnist_pipeline.modeling.training import _batches, _shuffled_batches

    data = make_split(100)
    shuffled = _shuffled_batches(data, replace(QUICK, epochs=2), np.random.default_rng(0), seed=0)
    assert shuffled.options().autotune.enabled is False
    assert _batches(data, 32).options().autotune.enabled is False


def test_epoch_seconds_has_one_value_per_epoch_run() -> None:
    config = TrainConfig(profile="test", epochs=3, batch_size=100, validation_fraction=0.2, early_stopping_patience=1)
    result = train_model("ann_no_hidden", config, make_split(600), seed=2)
    assert len(result.epoch_seconds) == result.epochs_run
    assert all(seconds > 0 for seconds in result.epoch_seconds)
    assert sum(result.epoch_seconds) <= result.seconds
