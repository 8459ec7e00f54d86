"""Champion/challenger across real runs: re-evaluation on a new test split, and the `champion` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import make_synthetic_digits
from tests.test_flow import run_flow

pytestmark = pytest.mark.usefixtures("prefect_server")
CLI = str(Path(sys.executable).with_name("mnist-pipeline"))
MODEL = "ann_no_hidden"


def write_digits(path: Path, test_seed: int) -> Path:
    """Same training images, a test split drawn with `test_seed`: another dataset fingerprint."""
    x_train, y_train = make_synthetic_digits(1200, seed=1)
    x_test, y_test = make_synthetic_digits(250, seed=test_seed)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Run 1 on one test split, run 2 (one more epoch) on another, in the same data and reports dirs."""
    tmp = tmp_path_factory.mktemp("champion")
    state, first = run_flow(tmp, write_digits(tmp / "a.npz", test_seed=20), models=[MODEL])
    assert state.is_completed(), state.message
    state, second = run_flow(tmp, write_digits(tmp / "b.npz", test_seed=21), models=[MODEL], epochs={MODEL: 2})
    assert state.is_completed(), state.message
    return tmp, first, second


def test_old_champion_is_re_evaluated_on_the_new_test_split(two_runs: tuple[Path, Any, Any]) -> None:
    from mnist_pipeline.data.layout import DataLayout
    from mnist_pipeline.modeling.evaluation import evaluate_saved_model

    tmp, first, second = two_runs
    assert first["data"]["fingerprint"] != second["data"]["fingerprint"]
    layout = DataLayout(tmp / "data")
    new_test = layout.pin(second["data"]["fingerprint"]).split_file("test")
    old_on_new = evaluate_saved_model(layout, MODEL, first["models"][MODEL]["key"], new_test, None).accuracy
    decision = second["champion"][MODEL]
    assert decision["champion_accuracy"] == pytest.approx(float(old_on_new), abs=1e-9)
    assert decision["challenger_accuracy"] == second["models"][MODEL]["test_accuracy"]


def champion_cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [CLI, "champion", "--data-dir", str(tmp / "data"), "--reports-dir", str(tmp / "reports"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def champion_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(f"{MODEL} ")]
    return line


def test_champion_cli_force_promotes_and_rolls_back(two_runs: tuple[Path, Any, Any]) -> None:
    tmp, first, second = two_runs
    first_run, second_run = first["run"]["name"], second["run"]["name"]
    before = champion_line(champion_cli(tmp).stdout)
    current = second_run if second["champion"][MODEL]["promoted"] else first_run
    assert f"run {current} " in before
    other = first_run if current == second_run else second_run

    forced = champion_cli(tmp, "--force-promote", MODEL, "--run", other, "--reason", "test")
    assert forced.returncode == 0, forced.stderr
    line = champion_line(forced.stdout)
    assert f"run {other} " in line and "(forced)" in line

    rolled = champion_cli(tmp, "--rollback", MODEL, "--reason", "test")
    assert rolled.returncode == 0, rolled.stderr
    assert f"run {current} " in champion_line(rolled.stdout)
    assert "(forced)" not in champion_line(rolled.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--force-promote", MODEL), "--force-promote: expected --run RUN_NAME"),
        (("--force-promote", MODEL, "--run", "run-1999-01-01-000000"), "expected the run's metrics.json"),
        (("--run", "run-1999-01-01-000000"), "--run: only used with --force-promote"),
    ],
)
def test_champion_cli_mistakes_are_one_line_exit_2(
    two_runs: tuple[Path, Any, Any], args: tuple[str, ...], message: str
) -> None:
    tmp, _, _ = two_runs
    registry = (tmp / "data" / "models" / "champions.json").read_bytes()
    done = champion_cli(tmp, *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert (tmp / "data" / "models" / "champions.json").read_bytes() == registry
