"""A run killed with SIGKILL during training resumes from its last finished epoch and ends like an uninterrupted run.

Real processes throughout: the CLI trains the CNN against the test Prefect server, the test kills it with
SIGKILL once an epoch-end state is on disk, and the rerun must resume and match a run that was never killed; a
run in this process then finds the model again in the moved data dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import make_synthetic_digits
from tests.test_flow import run_flow

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))
EPOCHS = 4


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough images that a CNN epoch takes long enough to be killed in the middle of training."""
    path = tmp_path_factory.mktemp("resume") / "digits.npz"
    x_train, y_train = make_synthetic_digits(2000, seed=5)
    x_test, y_test = make_synthetic_digits(300, seed=6)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def cli_command(work: Path, digits: Path) -> list[str]:
    return [
        CLI,
        "run",
        "--source",
        f"npz:{digits}",
        "--models",
        "cnn",
        "--epochs",
        f"cnn={EPOCHS}",
        "--data-dir",
        str(work / "data"),
        "--reports-dir",
        str(work / "reports"),
    ]


def run_cli(work: Path, digits: Path, api_url: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run(cli_command(work, digits), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics_line = next(line for line in done.stdout.splitlines() if line.startswith("metrics: "))
    return done, json.loads(Path(metrics_line.removeprefix("metrics: ")).read_text())


def saved_epoch(state_file: Path) -> int:
    with np.load(state_file, allow_pickle=False) as archive:
        return int(json.loads(str(archive["meta"]))["epoch"])


def kill_after_epoch(work: Path, digits: Path, api_url: str, epoch: int) -> int:
    """Start the CLI, SIGKILL it once the state of `epoch` (or later) is saved; returns the saved epoch."""
    env = {**os.environ, "PREFECT_API_URL": api_url}
    process = subprocess.Popen(cli_command(work, digits), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    models = work / "data" / "models" / "cnn"
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and process.poll() is None:
            states = list(models.glob("*.resume.npz")) if models.is_dir() else []
            if states and saved_epoch(states[0]) >= epoch:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        process.wait(timeout=30)
        stderr = process.stderr.read().decode() if process.stderr else ""
    assert process.returncode == -signal.SIGKILL, f"run ended before it could be killed: {stderr[-3000:]}"
    (state,) = models.glob("*.resume.npz")
    assert not list(models.glob("*.keras")), "killed during training, so no model may be saved yet"
    return saved_epoch(state)


def test_killed_run_resumes_and_matches_an_uninterrupted_run(prefect_server: str, digits: Path, tmp_path: Path) -> None:
    _, reference = run_cli(tmp_path / "reference", digits, prefect_server)

    killed = tmp_path / "killed"
    epoch = kill_after_epoch(killed, digits, prefect_server, epoch=2)
    assert 2 <= epoch < EPOCHS
    done, resumed = run_cli(killed, digits, prefect_server)

    assert f"resumed cnn from epoch {epoch}" in done.stderr
    ours, theirs = resumed["models"]["cnn"], reference["models"]["cnn"]
    assert ours["resumed_from_epoch"] == epoch and theirs["resumed_from_epoch"] == 0
    assert round(ours["test_accuracy"], 6) == round(theirs["test_accuracy"], 6)
    assert round(ours["test_loss"], 6) == round(theirs["test_loss"], 6)
    assert ours["history"] == theirs["history"] and ours["key"] == theirs["key"]
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    assert not list((killed / "data" / "models" / "cnn").glob("*.resume.npz")), "state kept after the model was saved"

    # A moved data dir keeps its cache: the model is found by its key, and its summary holds no path.
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(killed / "data", moved / "data")
    state, again = run_flow(moved, digits, models=["cnn"], epochs={"cnn": EPOCHS})  # in this process: no training
    assert state.is_completed(), state.message
    cached = again["models"]["cnn"]
    assert cached["cached"] is True
    assert Path(cached["model_path"]).is_relative_to(moved / "data") and Path(cached["model_path"]).is_file()
    assert cached["test_loss"] == ours["test_loss"]


class Interrupted(Exception):
    """Stands in for the kill in the in-process tests below (the test above uses a real SIGKILL)."""


def train_small(checkpoint: Path | None, stop_at: int | None = None) -> Any:
    from mnist_pipeline.data.dataset import Split
    from mnist_pipeline.modeling.profiles import resolve_config
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(None, deterministic=True)
    images, labels = make_synthetic_digits(1200, seed=8)

    def interrupt(report: Any) -> None:
        if report.epoch == stop_at:
            raise Interrupted

    # The default CNN settings: bfloat16, cosine decay with warm-up, early stopping with best weights kept.
    config = resolve_config("default", "cnn", epochs=3)
    return train_model(
        "cnn", config, Split(images, labels.astype(np.int64)), seed=3, on_epoch=interrupt, checkpoint=checkpoint
    )


def test_resumed_training_equals_uninterrupted_training_in_process(tmp_path: Path) -> None:
    reference = train_small(None)
    state = tmp_path / "cnn.resume.npz"
    with pytest.raises(Interrupted):
        train_small(state, stop_at=3)  # epoch 3 raises before its state is saved: epochs 1-2 are on disk
    assert saved_epoch(state) == 2
    resumed = train_small(state)
    assert resumed.resumed_from_epoch == 2 and reference.resumed_from_epoch == 0
    assert resumed.history == reference.history and resumed.best_epoch == reference.best_epoch
    for ours, theirs in zip(resumed.model.get_weights(), reference.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_an_unusable_state_file_means_training_starts_over(tmp_path: Path) -> None:
    state = tmp_path / "cnn.resume.npz"
    state.write_bytes(b"not an npz")
    result = train_small(state)
    assert result.resumed_from_epoch == 0 and result.epochs_run == 3
    assert saved_epoch(state) == 3
