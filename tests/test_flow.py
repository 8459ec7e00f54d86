"""End-to-end runs of the `mnist-pipeline` flow against a real Prefect server, on small synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support import make_synthetic_digits

pytestmark = pytest.mark.usefixtures("prefect_server")

MODEL_KEYS = {
    "test_accuracy",
    "test_loss",
    "epochs",
    "batch_size",
    "train_seconds",
    "started_at",
    "finished_at",
    "confusion_matrix",
    "per_class",
    "cached",
    "history",
    "predictions_path",
    "model_path",
}


def run_flow(tmp: Path, npz: Path, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """Run the flow with small settings; returns the final state and metrics.json (when written)."""
    from flows.pipeline import mnist_pipeline

    params = {
        "source": f"npz:{npz}",
        "data_dir": str(tmp / "data"),
        "reports_dir": str(tmp / "reports"),
        "epochs": {"ann_no_hidden": 1, "ann_hidden_100": 1, "cnn": 1},
        **overrides,
    }
    state = mnist_pipeline(**params, return_state=True)
    metrics: dict[str, Any] = {}
    if state.is_completed():
        metrics = json.loads(Path(state.result()["metrics"]).read_text())
    return state, metrics


def list_flow_run_ids(client: Any, flow_run_id: str) -> list[str]:
    """The flow run and its subflow runs (training happens in a subflow)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )
    return [flow_run_id, *[str(child.id) for child in children]]


def read_task_runs(flow_run_id: str, name: str) -> list[Any]:
    """Task runs named `name` under the flow run and its subflows, via the API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": list_flow_run_ids(client, flow_run_id)}),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
        )
    return [run for run in runs if run.name.rsplit("-", 1)[0] == name]


def read_artifact_keys(flow_run_id: str) -> set[str]:
    """Keys of the artifacts a flow run (and its subflows) published, read back through the API."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        ids = list_flow_run_ids(client, flow_run_id)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
    return {artifact.key for artifact in artifacts}


def assert_overlapping(runs: list[Any]) -> None:
    """Every pair of runs shares wall-clock time: they ran side by side, not one after another."""
    spans = sorted((run.start_time, run.end_time) for run in runs)
    assert len(spans) >= 2
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, spans


def expected_calibration_error(confidence: Any, correct: Any) -> float:
    """ECE over 15 equal-width bins, written out here so the recorded figure is checked against another sum."""
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=float)
    bins = np.minimum((confidence * 15).astype(int), 14)
    return sum(abs((correct - confidence)[bins == b].sum()) for b in range(15)) / len(confidence)


def draw_expected_charts(tmp: Path, metrics: dict[str, Any]) -> set[str]:
    """The chart cache's file names for this run's models, drawn here from the run's own outputs."""
    from mnist_pipeline.data.layout import DataLayout
    from mnist_pipeline.data.store import read_split
    from mnist_pipeline.report import select_mistakes
    from mnist_pipeline.report.charts import cache_charts_in, draw_model_charts
    from mnist_pipeline.report.view import assign_colors
    from tasks.report import GALLERY_SIZE

    test = read_split(DataLayout(tmp / "data").pin(metrics["data"]["fingerprint"]).split_file("test"))
    colors = assign_colors(list(metrics["models"]))
    expected = tmp / "expected-charts"
    with cache_charts_in(expected):
        for name, model in metrics["models"].items():
            mistakes = select_mistakes(pd.read_parquet(model["predictions_path"]), test.images, limit=GALLERY_SIZE)
            trust = (model["calibration"], model["selective"])
            draw_model_charts(np.asarray(model["confusion_matrix"]), model["history"], colors[name], mistakes, trust)
    return {p.name for p in expected.iterdir()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> tuple[Path, Any, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("flow")
    state, metrics = run_flow(tmp, synthetic_npz)
    return tmp, state, metrics


def test_flow_completes_and_writes_the_metrics_contract(first_run: tuple[Path, Any, dict[str, Any]]) -> None:
    tmp, state, metrics = first_run
    assert state.is_completed(), state.message
    assert set(metrics["models"]) == {"ann_no_hidden", "ann_hidden_100", "cnn"}
    for name, model in metrics["models"].items():
        assert set(model) >= MODEL_KEYS, name
        assert 0.0 <= model["test_accuracy"] <= 1.0
        cm = np.array(model["confusion_matrix"])
        assert cm.shape == (10, 10) and cm.sum() == metrics["data"]["test_rows"] == 300
        assert np.trace(cm) / cm.sum() == pytest.approx(model["test_accuracy"])
        assert all(len(model["per_class"][metric]) == 10 for metric in ("precision", "recall", "f1"))
        for stamp in ("started_at", "finished_at"):
            assert datetime.fromisoformat(model[stamp]).utcoffset() == timedelta(0)
        assert model["cached"] is False and model["epochs_run"] == 1
        assert Path(model["model_path"]).is_file()
        # Calibrated on the 60 rows (5 %) of train the default profile held out; ECE recorded as the predictions say.
        calibration = json.loads(Path(model["model_path"]).with_suffix(".calibration.json").read_text())
        assert calibration["held_out_rows"] == 60 and model["calibration"]["temperature"] == calibration["temperature"]
        scored = pd.read_parquet(model["predictions_path"])
        right = scored["label"] == scored["predicted"]
        assert model["calibration"]["ece_after"] == pytest.approx(
            expected_calibration_error(scored["confidence"], right)
        )
        assert model["calibration"]["ece_before"] == pytest.approx(
            expected_calibration_error(scored["uncalibrated_confidence"], right)
        )
        answered = scored["confidence"] >= model["selective"]["threshold"]
        assert model["selective"]["coverage"] == pytest.approx(answered.mean())
        assert model["selective"]["error"] == pytest.approx(1 - right[answered].mean() if answered.any() else 0.0)
    # The synthetic classes are easy: a real training run learns them in one epoch.
    assert metrics["models"]["cnn"]["test_accuracy"] > 0.5
    assert metrics["data"]["train_rows"] == 1200 and metrics["data"]["source"] == "npz"
    assert len(metrics["data"]["fingerprint"]) == 64
    manifest = json.loads((tmp / "data" / "parquet" / "manifest.json").read_text())
    assert metrics["data"]["test_sha256"] == manifest["splits"]["test"]["sha256"]
    assert all(isinstance(stage["seconds"], float) and stage["seconds"] >= 0 for stage in metrics["stages"].values())
    assert metrics["run"]["name"].startswith("run-")
    assert metrics["validation"]["success"] is True
    assert {"ingest", "validate", "train", "evaluate", "charts", "report"} <= set(metrics["stages"])
    assert metrics["run"]["flow_run_id"] == str(state.state_details.flow_run_id)
    run_dir = tmp / "reports" / "runs" / metrics["run"]["name"]
    assert (run_dir / "report.html").is_file() and (tmp / "reports" / "latest.html").is_file()
    # Each model's `charts` task drew what the report and the UI show: had the two disagreed on any input, the
    # report would have added pictures of its own to the run's chart cache (beside the run's accuracy charts).
    cached = {p.name for p in (tmp / "reports" / ".charts").iterdir() if not p.name.startswith("accuracy-")}
    assert cached == draw_expected_charts(tmp, metrics)
    # First run in a fresh data dir: every model becomes champion, and the `champion` CLI lists this run for each.
    listing = subprocess.run(
        [str(Path(sys.executable).with_name("mnist-pipeline")), "champion", "--data-dir", str(tmp / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for name in metrics["models"]:
        assert metrics["champion"][name]["promoted"] is True and metrics["champion"][name]["champion_accuracy"] is None
        (line,) = [line for line in listing.splitlines() if line.startswith(f"{name} ")]
        assert f"run {metrics['run']['name']} " in line


def test_flow_publishes_artifacts_under_stable_keys(first_run: tuple[Path, Any, dict[str, Any]]) -> None:
    _, state, _ = first_run
    keys = read_artifact_keys(str(state.state_details.flow_run_id))
    expected = {"mnist-summary", "mnist-model-metrics", "mnist-report", "mnist-promotion"}
    expected |= {"training-ann-no-hidden", "training-ann-hidden-100", "training-cnn"}
    assert expected <= keys


def test_models_train_concurrently_with_threads(first_run: tuple[Path, Any, dict[str, Any]]) -> None:
    _, state, _ = first_run
    runs = read_task_runs(str(state.state_details.flow_run_id), "train")
    assert len(runs) == 3
    assert_overlapping(runs)


def test_rerun_reuses_every_model_and_changed_epochs_retrain_one(
    first_run: tuple[Path, Any, dict[str, Any]], synthetic_npz: Path
) -> None:
    tmp, _, first = first_run
    assert first["validation"]["reused"] is False
    for model in first["models"].values():
        # The cache is the content-addressed files: each model and evaluation with its summary beside it.
        assert Path(model["model_path"]).with_suffix(".json").is_file()
        assert Path(model["predictions_file"]).with_suffix(".json").is_file()
        assert model["evaluation_reused"] is False
        os.utime(model["model_path"], (1000, 1000))
    assert not (tmp / "data" / "prefect-results").exists()
    state, again = run_flow(tmp, synthetic_npz)
    assert state.is_completed()
    assert all(model["cached"] and model["evaluation_reused"] for model in again["models"].values())
    assert all(Path(model["model_path"]).stat().st_mtime > 1000 for model in again["models"].values())  # used now
    assert again["validation"]["reused"] is True
    for name, model in again["models"].items():
        earlier = Path(first["models"][name]["predictions_path"])
        assert Path(model["predictions_path"]).read_bytes() == earlier.read_bytes()
        assert Path(model["predictions_path"]).parent.parent.name == again["run"]["name"]
        assert model["test_accuracy"] == first["models"][name]["test_accuracy"]
        assert again["champion"][name]["promoted"] is False
    state, changed = run_flow(tmp, synthetic_npz, epochs={"ann_no_hidden": 1, "ann_hidden_100": 1, "cnn": 2})
    assert state.is_completed()
    assert {name: model["cached"] for name, model in changed["models"].items()} == {
        "ann_no_hidden": True,
        "ann_hidden_100": True,
        "cnn": False,
    }
    assert changed["models"]["cnn"]["epochs_run"] == 2
    assert {name: model["evaluation_reused"] for name, model in changed["models"].items()} == {
        "ann_no_hidden": True,
        "ann_hidden_100": True,
        "cnn": False,
    }
    Path(changed["models"]["ann_no_hidden"]["model_path"]).unlink()
    state, refreshed = run_flow(tmp, synthetic_npz, epochs={"ann_no_hidden": 1, "ann_hidden_100": 1, "cnn": 2})
    assert state.is_completed()
    assert refreshed["models"]["ann_no_hidden"]["cached"] is False
    assert Path(refreshed["models"]["ann_no_hidden"]["model_path"]).is_file()
    # A model trained anew is scored anew, though a record under its evaluation key is still there.
    assert refreshed["models"]["ann_no_hidden"]["evaluation_reused"] is False
    assert refreshed["models"]["ann_hidden_100"]["evaluation_reused"] is True


def test_an_unchanged_rerun_does_not_import_tensorflow(first_run: tuple[Path, Any, dict[str, Any]]) -> None:
    first = first_run[2]
    script = f"""
import json, sys
from pathlib import Path
from flows.pipeline import mnist_pipeline
outputs = mnist_pipeline(**{first["run"]["parameters"]!r})
metrics = json.loads(Path(outputs["metrics"]).read_text())
cached = [model["cached"] for model in metrics["models"].values()]
print(json.dumps({{"tensorflow": "tensorflow" in sys.modules, "cached": cached}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"tensorflow": False, "cached": [True, True, True]}


def test_an_edited_split_is_validated_again_and_the_run_still_reuses_models(
    first_run: tuple[Path, Any, dict[str, Any]], synthetic_npz: Path
) -> None:
    tmp, _, _ = first_run
    test_file = tmp / "data" / "parquet" / "test.parquet"
    table = pq.read_table(test_file)
    test_file.unlink()
    pq.write_table(table, test_file, compression="gzip")  # same content, other bytes: the gate must look again
    state, metrics = run_flow(tmp, synthetic_npz)
    assert state.is_completed(), state.message
    assert metrics["validation"]["reused"] is False
    assert all(model["cached"] for model in metrics["models"].values())


def test_the_process_runner_trains_concurrently(synthetic_npz: Path, tmp_path: Path) -> None:
    """The Dask runner's test is test_dask_address.py's, on a real scheduler with two workers."""
    state, metrics = run_flow(
        tmp_path, synthetic_npz, task_runner="processes", models=["ann_no_hidden", "ann_hidden_100"], train_limit=600
    )
    assert state.is_completed(), state.message
    assert metrics["run"]["task_runner"] == "processes"
    assert_overlapping(read_task_runs(str(state.state_details.flow_run_id), "train"))


def plant_earlier_outputs(tmp_path: Path) -> dict[Path, bytes]:
    """An earlier run's model and reports, so a blocked run can be shown to leave them alone."""
    planted = {
        tmp_path / "data" / "models" / "cnn" / "earlier.keras": b"earlier model",
        tmp_path / "reports" / "latest.html": b"<p>earlier report</p>",
        tmp_path / "reports" / "index.html": b"<p>earlier index</p>",
        tmp_path / "reports" / "runs" / "run-2026-01-01-000000" / "metrics.json": b"{}",
    }
    for path, content in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return planted


def assert_untouched(tmp_path: Path, planted: dict[Path, bytes]) -> None:
    assert {path: path.read_bytes() for path in planted} == planted
    assert [p.name for p in (tmp_path / "reports" / "runs").iterdir()] == ["run-2026-01-01-000000"]
    assert [p.name for p in (tmp_path / "data" / "models").rglob("*") if p.is_file()] == ["earlier.keras"]


def test_validation_gate_blocks_training(tmp_path: Path) -> None:
    planted = plant_earlier_outputs(tmp_path)
    x_train, y_train = make_synthetic_digits(600, seed=3)
    x_test, y_test = make_synthetic_digits(200, seed=4)
    y_test[7] = 10
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    state, _ = run_flow(tmp_path, bad)
    assert state.is_failed()
    assert "label" in state.message and "10" in state.message
    flow_run_id = str(state.state_details.flow_run_id)
    assert read_task_runs(flow_run_id, "train") == []
    assert "mnist-validation" in read_artifact_keys(flow_run_id)
    assert_untouched(tmp_path, planted)


def run_cli(tmp_path: Path, npz: Path) -> subprocess.CompletedProcess[str]:
    """`mnist-pipeline run` as a user types it, on an npz source, writing under tmp_path."""
    command = [str(Path(sys.executable).with_name("mnist-pipeline")), "run", "--source", f"npz:{npz}"]
    command += ["--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_cli_run_reports_a_failed_gate_as_one_message_without_traceback(tmp_path: Path) -> None:
    planted = plant_earlier_outputs(tmp_path)
    x_train, y_train = make_synthetic_digits(600, seed=3)
    x_test, y_test = make_synthetic_digits(200, seed=4)
    y_test[5] = 10
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    done = run_cli(tmp_path, bad)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "test: label 10 found in 1 row (row id 5); expected values in 0..9" in done.stderr
    assert_untouched(tmp_path, planted)


def test_cli_run_with_a_corrupt_source_exits_cleanly_with_one_message(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_text("garbage\n")
    done = run_cli(tmp_path, corrupt)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"{corrupt}: expected an .npz (zip) archive" in done.stderr


def test_a_failed_progress_update_keeps_the_trained_model(
    tmp_path: Path, synthetic_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epoch progress is sent beside training; when the API refuses it, the model is still trained and kept."""
    import tasks.train

    real_update = tasks.train.update_progress_artifact
    refused: list[str] = []

    def refuse_epoch_updates(artifact_id: Any, progress: float, description: str | None = None) -> Any:
        if description and " epoch " in description:
            refused.append(description)
            raise RuntimeError("progress API unavailable")
        return real_update(artifact_id, progress, description=description)

    monkeypatch.setattr(tasks.train, "update_progress_artifact", refuse_epoch_updates)
    state, metrics = run_flow(tmp_path, synthetic_npz, models=["ann_no_hidden"], epochs={"ann_no_hidden": 2})
    assert state.is_completed(), state.message
    assert refused == ["ann_no_hidden: epoch 1", "ann_no_hidden: epoch 2"]
    assert metrics["models"]["ann_no_hidden"]["epochs_run"] == 2
    assert Path(metrics["models"]["ann_no_hidden"]["model_path"]).is_file()
