"""Whole runs side by side on one data dir: own report folders, one first champion, limited runs left out.

Real `mnist-pipeline run` processes against the test Prefect server, on small synthetic digits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_pipeline.champion.registry import load_registry

pytestmark = pytest.mark.usefixtures("prefect_server")

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))


def start_run(npz: Path, tmp: Path, seed: int, reports: Path | None = None) -> subprocess.Popen[str]:
    command = [CLI, "run", "--source", f"npz:{npz}", "--models", "ann_no_hidden", "--epochs", "ann_no_hidden=1"]
    command += ["--seed", str(seed), "--data-dir", str(tmp / "data"), "--reports-dir", str(reports or tmp / "reports")]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> Path:
    """Three runs started at the same moment on one data dir and one reports dir."""
    tmp = tmp_path_factory.mktemp("concurrent")
    processes = [start_run(synthetic_npz, tmp, seed) for seed in (1, 2, 3)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    return tmp


def test_each_concurrent_run_has_its_own_complete_report_folder(three_runs: Path) -> None:
    folders = sorted((three_runs / "reports" / "runs").iterdir())
    assert len(folders) == 3
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["run"]["name"] == folder.name
        assert metrics["run"]["flow_run_id"].startswith(folder.name.rsplit("-", 1)[1])
        assert (folder / "report.html").is_file() and (folder / "predictions" / "ann_no_hidden.parquet").is_file()
    seeds = {json.loads((folder / "metrics.json").read_text())["run"]["seed"] for folder in folders}
    assert seeds == {1, 2, 3}
    index = (three_runs / "reports" / "index.html").read_text()
    assert all(folder.name in index for folder in folders)


def test_exactly_one_first_champion_and_every_decision_names_its_champion(three_runs: Path) -> None:
    registry = load_registry(three_runs / "data" / "models" / "champions.json")
    decisions = [event["decision"] for event in registry.history]
    assert len(decisions) == 3
    assert [decision["champion_run"] is None for decision in decisions] == [True, False, False]
    assert decisions[0]["reason"].startswith("no champion yet")
    champion = registry.history[0]["run_name"]
    for event in registry.history[1:]:
        assert event["decision"]["champion_run"] == champion  # compared with the champion current at the time
        if event["kind"] == "promoted":
            champion = event["run_name"]
    assert registry.champions["ann_no_hidden"].candidate.run_name == champion
    # The registry is written last: the run that recorded last also wrote latest.html.
    last = registry.history[-1]["run_name"]
    latest = (three_runs / "reports" / "latest.html").read_text()
    assert latest == (three_runs / "reports" / "runs" / last / "report.html").read_text()


def test_a_limited_run_leaves_the_champions_alone(three_runs: Path, synthetic_npz: Path) -> None:
    from flows.pipeline import mnist_pipeline

    registry = three_runs / "data" / "models" / "champions.json"
    before = registry.read_bytes()
    outputs = mnist_pipeline(
        source=f"npz:{synthetic_npz}",
        models=["ann_no_hidden"],
        epochs={"ann_no_hidden": 1},
        test_limit=100,
        data_dir=str(three_runs / "data"),
        reports_dir=str(three_runs / "reports"),
    )
    assert registry.read_bytes() == before
    decision = json.loads(Path(outputs["metrics"]).read_text())["champion"]["ann_no_hidden"]
    assert decision["considered"] is False and decision["promoted"] is False
    assert decision["reason"].startswith("not considered (limited run); --test-limit 100:")
    assert "not considered (limited run)" in Path(outputs["report"]).read_text()


@pytest.mark.parametrize(
    ("options", "limits"),
    [
        ([], None),
        (["--train-limit", "2000", "--test-limit", "1000"], "--train-limit 2000, --test-limit 1000"),
        (["--test-limit", "200", "--promote-limited"], None),
    ],
)
def test_limited_runs_stay_out_of_promotion_unless_asked(options: list[str], limits: str | None) -> None:
    from cli.main import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["run", *options]))
    assert config.promotion_limits() == limits
    assert config.to_parameters()["promote_limited"] is ("--promote-limited" in options)


def test_runs_and_garbage_collections_at_the_same_time_lose_nothing(three_runs: Path, synthetic_npz: Path) -> None:
    """The earlier runs' files all look a month old; two reruns reuse their models while collections run: each run
    marks what it reuses before a collection looks, or makes it again after one removed it. No run fails, nothing a
    run or a champion needs goes, and a model nobody reused goes unless it is a champion."""
    from mnist_pipeline.champion.registry import INSTALLING_KINDS

    data = three_runs / "data"
    history = load_registry(data / "models" / "champions.json").history
    champions = {event["candidate"]["key"] for event in history if event["kind"] in INSTALLING_KINDS}
    earlier = [json.loads(path.read_text()) for path in (three_runs / "reports" / "runs").glob("*/metrics.json")]
    keys = {metrics["run"]["seed"]: metrics["models"]["ann_no_hidden"]["key"] for metrics in earlier}
    month_ago = time.time() - 30 * 86400
    for path in data.rglob("*"):
        os.utime(path, (month_ago, month_ago), follow_symlinks=False)

    rerun = three_runs / "rerun"
    runs = [start_run(synthetic_npz, three_runs, seed, reports=rerun / str(seed)) for seed in (1, 2)]
    gc = [CLI, "gc", "--data-dir", str(data)]
    collections = 0
    while any(run.poll() is None for run in runs) or not collections:
        done = subprocess.run(gc, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        collections += 1
        time.sleep(0.5)
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-3000:]
    assert subprocess.run(gc, capture_output=True, text=True, timeout=120, check=False).returncode == 0

    models = data / "models" / "ann_no_hidden"
    for seed in (1, 2):
        (metrics_path,) = (rerun / str(seed) / "runs").glob("*/metrics.json")
        model = json.loads(metrics_path.read_text())["models"]["ann_no_hidden"]
        assert model["key"] == keys[seed] and Path(model["model_path"]).is_file()
        assert Path(model["predictions_file"]).is_file() and Path(model["predictions_path"]).is_file()
    assert all((models / f"{key}.keras").is_file() for key in champions)
    assert (models / f"{keys[3]}.keras").is_file() is (keys[3] in champions)
