"""The scheduled-retrain deployment end to end: real server, `mnist-pipeline serve`, `prefect deployment run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import start_process, stop_process

DEPLOYMENT = "mnist-pipeline/scheduled-retrain"
PREFECT = [sys.executable, "-m", "prefect"]


def read_deployment(api_url: str) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(DEPLOYMENT)


@pytest.fixture(scope="module")
def served(prefect_server: str, synthetic_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`mnist-pipeline serve` running against the test server; yields the directory it writes into."""
    from prefect.exceptions import ObjectNotFound

    work = tmp_path_factory.mktemp("served")
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "serve",
        "--cron",
        "15 4 * * 2",
        "--timezone",
        "Europe/Berlin",
        "--source",
        f"npz:{synthetic_npz}",
        "--data-dir",
        str(work / "data"),
        "--reports-dir",
        str(work / "reports"),
        "--epochs",
        "ann_no_hidden=1",
        "ann_hidden_100=1",
        "cnn=1",
    ]
    log = (work / "serve.log").open("w")
    process = start_process(command, env={**os.environ, "PREFECT_API_URL": prefect_server}, stdout=log, cwd=work)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (work / "serve.log").read_text()
            try:
                read_deployment(prefect_server)
                break
            except ObjectNotFound:
                assert time.monotonic() < deadline, "deployment never registered"
                time.sleep(1)
        yield work
    finally:
        stop_process(process)
        log.close()


def run_deployment(api_url: str, *params: str) -> subprocess.CompletedProcess[str]:
    args = [arg for param in params for arg in ("--param", param)]
    return subprocess.run(
        [*PREFECT, "deployment", "run", DEPLOYMENT, *args, "--watch", "--watch-timeout", "400"],
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )


def latest_flow_run(api_url: str) -> Any:
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        from prefect.client.schemas.filters import DeploymentFilter

        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}), sort=FlowRunSort.START_TIME_DESC, limit=5
        )
    return next(run for run in runs if run.start_time is not None)


def test_schedule_is_registered_with_cron_and_timezone(served: Path, prefect_server: str) -> None:
    deployment = read_deployment(prefect_server)
    crons = [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules]
    assert crons == [("15 4 * * 2", "Europe/Berlin")]
    assert deployment.parameters["data_dir"] == str(served / "data")
    # The server's scheduler turns the cron into runs: the next ones are Tuesdays at 04:15 in Berlin.
    from zoneinfo import ZoneInfo

    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter

    def read_cron_runs() -> list[Any]:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}))
        return [run for run in runs if run.auto_scheduled]

    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while not (scheduled := read_cron_runs()):
            assert time.monotonic() < deadline, "the server scheduled no run of the cron (see its server.log)"
            time.sleep(1)
    berlin = {run.expected_start_time.astimezone(ZoneInfo("Europe/Berlin")) for run in scheduled}
    assert {(start.weekday(), start.hour, start.minute) for start in berlin} == {(1, 4, 15)}


def test_deployment_run_completes_with_its_parameters_and_artifacts(served: Path, prefect_server: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    done = run_deployment(prefect_server, 'models=["cnn"]', "train_limit=600")
    assert done.returncode == 0, done.stdout + done.stderr
    run = latest_flow_run(prefect_server)
    assert run.state.is_completed()
    assert run.parameters["models"] == ["cnn"] and run.parameters["train_limit"] == 600
    assert run.name.startswith("retrain-")
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    keys = {artifact.key for artifact in artifacts}
    assert {"mnist-summary", "mnist-model-metrics", "mnist-report"} <= keys
    metrics = json.loads((served / "reports" / "runs" / run.name / "metrics.json").read_text())
    assert list(metrics["models"]) == ["cnn"] and metrics["models"]["cnn"]["train_rows"] == 600
    # The served run's own process registers our loggers: the ingest summary reaches the server's log.
    ingest_logs = [log for log in read_logs(run.id) if log.name == "mnist_pipeline.data.ingest"]
    assert any(metrics["data"]["fingerprint"][:12] in log.message for log in ingest_logs)


def read_logs(flow_run_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))


def test_bad_parameter_fails_fast_with_a_clear_message(served: Path, prefect_server: str) -> None:
    done = run_deployment(prefect_server, 'models=["resnet"]')
    assert done.returncode != 0
    run = latest_flow_run(prefect_server)
    assert run.state.is_failed()
    assert "resnet" in (run.state.message or "")


def test_os_error_in_a_served_run_is_one_line_in_its_state_and_logs(served: Path, prefect_server: str) -> None:
    blocker = served / "a-file"
    blocker.write_text("not a folder\n")
    done = run_deployment(prefect_server, f'data_dir="{blocker / "data"}"')
    assert done.returncode != 0
    run = latest_flow_run(prefect_server)
    assert run.state.is_failed()
    message = run.state.message or ""
    assert str(blocker / "data") in message and "expected a directory" in message and "\n" not in message
    errors = [log.message for log in read_logs(run.id) if log.level >= 40]
    assert any(str(blocker / "data") in text for text in errors), errors
    assert not [text for text in errors if "Traceback" in text or "\n" in text.strip()], errors


def count_flow_runs() -> int:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        return len(client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]})))


@pytest.mark.parametrize(
    ("param", "name"), [('train_limit="many"', "train_limit"), ("seed=1.5", "seed"), ("models=7", "models")]
)
def test_parameter_of_the_wrong_type_is_refused_naming_it(
    served: Path, prefect_server: str, param: str, name: str
) -> None:
    """The deployment's parameter schema (from the flow's type hints) refuses it before any run exists."""
    runs = count_flow_runs()
    done = run_deployment(prefect_server, param)
    assert done.returncode != 0
    assert f"Validation failed for field '{name}'" in " ".join(done.stdout.split()), done.stdout
    assert count_flow_runs() == runs


def test_batch_predict_deployment_is_served_beside_it(served: Path, prefect_server: str) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("batch-predict/on-demand")
    assert deployment.parameters == {
        "data_dir": str(served / "data"),
        "output_dir": f"{served / 'reports'}/predictions",
    }
    assert not deployment.schedules


def test_weekly_maintenance_is_served_beside_it_and_runs(served: Path, prefect_server: str) -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 60  # `serve` registers its deployments one after another
    with get_client(sync_client=True) as client:
        while True:
            try:
                deployment = client.read_deployment_by_name("mnist-maintenance/weekly-gc")
                break
            except ObjectNotFound:
                assert time.monotonic() < deadline, "maintenance deployment never registered"
                time.sleep(1)
    assert deployment.parameters == {"data_dir": str(served / "data")}
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 4 * * 1", "Europe/Berlin")]
    done = subprocess.run(
        [*PREFECT, "deployment", "run", "mnist-maintenance/weekly-gc", "--param", "dry_run=true", "--watch"],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # --watch exits non-zero unless the run completed
