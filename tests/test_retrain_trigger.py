"""The retrain that starts when data arrives: against a real `prefect server start`, `mnist-pipeline serve`
registers a deployment trigger on the increment gate's event and a concurrency limit; `mnist-pipeline add-data`
starts one retrain with no further command, a run beside it is cancelled, and another `add-data` inside the
cooldown starts none. Also: prefect.yaml says the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deploy import (
    DEPLOYMENT_NAME,
    RETRAIN_PARAMETERS,
    build_increment_trigger,
    one_run_at_a_time,
)
from mnist_pipeline.increments import ACCEPTED_EVENT
from tests.increment_support import draw_strokes, write_image_folder
from tests.support import start_process, stop_process

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = f"mnist-pipeline/{DEPLOYMENT_NAME}"
COOLDOWN_MINUTES = 5
MNIST_PIPELINE = str(Path(sys.executable).with_name("mnist-pipeline"))


def read_retrain_automations(client: Any) -> tuple[Any, list[Any]]:
    """The deployment and the automations it owns (its triggers)."""
    deployment = client.read_deployment_by_name(DEPLOYMENT)
    return deployment, client.read_resource_related_automations(f"prefect.deployment.{deployment.id}")


def serve(work: Path, npz: Path, api_url: str, cooldown: float) -> subprocess.Popen:
    """Start `mnist-pipeline serve` (tiny training: one small model, one epoch) and wait until its trigger's
    automation has this cooldown: registered, and any earlier one replaced."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    command = [
        MNIST_PIPELINE,
        "serve",
        "--cooldown",
        str(cooldown),
        "--source",
        f"npz:{npz}",
        "--data-dir",
        str(work / "data"),
        "--reports-dir",
        str(work / "reports"),
        "--models",
        "ann_no_hidden",
        "--epochs",
        "ann_no_hidden=1",
    ]
    log = (work / "serve.log").open("a")
    # The runner looks for due runs every 2 s instead of 10, so a second run meets the first one still running.
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    process = start_process(command, env=env, stdout=log, cwd=work)
    log.close()
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:
            assert process.poll() is None, (work / "serve.log").read_text()
            try:
                _, automations = read_retrain_automations(client)
                if [a.trigger.within for a in automations] == [timedelta(minutes=cooldown)]:
                    return process
            except ObjectNotFound:
                pass
            assert time.monotonic() < deadline, "the trigger's automation never registered"
            time.sleep(1)


def remove_runs_nobody_served(api_url: str) -> None:
    """Delete the deployment's unfinished runs left on this shared server by earlier modules: an automation that
    an earlier module's `serve` registered outlives it, and fires on the increments later modules accept, so it
    creates runs no runner took. A restarted `serve` would run them first and hold the one retrain slot."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            return
        for run in client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]})):
            if run.state is None or not run.state.is_final():
                client.delete_flow_run(run.id)


@pytest.fixture(scope="module")
def served(prefect_server: str, synthetic_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`serve` started, stopped and started again with another cooldown (as a restart after a config change)."""
    work = tmp_path_factory.mktemp("triggered")
    remove_runs_nobody_served(prefect_server)
    stop_process(serve(work, synthetic_npz, prefect_server, cooldown=7))
    process = serve(work, synthetic_npz, prefect_server, cooldown=COOLDOWN_MINUTES)
    try:
        yield work
    finally:
        stop_process(process)


def add_data(work: Path, seed: int, api_url: str) -> str:
    """`mnist-pipeline add-data` on a folder of 40 new digit-like pictures; returns the accepted batch's id."""
    images, labels = draw_strokes(40, seed=seed)
    folder = write_image_folder(work / f"batch-{seed}", images, labels)
    done = subprocess.run(
        [MNIST_PIPELINE, "add-data", str(folder), "--data-dir", str(work / "data")],
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (accepted,) = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("accepted: ")]
    return accepted


def wait_for_accepted_event(client: Any, batch_id: str) -> None:
    """Until the server has stored the gate's event about this batch (events travel asynchronously)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    about = EventFilter(
        event=EventNameFilter(name=[ACCEPTED_EVENT]),
        resource=EventResourceFilter(id=[f"mnist-pipeline.increment.{batch_id}"]),
    )
    wait_for(lambda: client.read_events(filter=about, limit=1).events, 60, f"no event about {batch_id}")


def list_triggered_runs(client: Any, before: set[Any]) -> list[Any]:
    """The deployment's flow runs that its cron schedule did not create, other than those in `before` (an
    earlier test module may have run the same deployment on this server)."""
    from prefect.client.schemas.filters import DeploymentFilter

    deployment = client.read_deployment_by_name(DEPLOYMENT)
    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}))
    return [run for run in runs if not run.auto_scheduled and run.id not in before]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(1)
    return found


def test_serve_registers_one_trigger_and_one_run_at_a_time(served: Path, prefect_server: str) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        deployment, automations = read_retrain_automations(client)
    assert len(automations) == 1  # serving again replaced the automation, it did not add one
    trigger = automations[0].trigger
    assert trigger.expect == {ACCEPTED_EVENT}
    assert trigger.match.model_dump() == {"prefect.resource.id": "mnist-pipeline.increment.*"}
    assert (trigger.posture, trigger.threshold, trigger.within) == ("Reactive", 1, timedelta(minutes=COOLDOWN_MINUTES))
    assert not trigger.for_each  # one cooldown window for all increments, not one per increment
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert deployment.parameters["require_new_data"] is True
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 3 * * 1", "UTC")]


def wait_for_state(client: Any, run_id: Any, reached: str, timeout: float) -> Any:
    """The run's state once it is final, or (`reached="running"`) once it runs."""

    def check() -> Any:
        state = client.read_flow_run(run_id).state
        done = state is not None and (state.is_final() or (reached == "running" and state.is_running()))
        return state if done else None

    return wait_for(check, timeout, f"flow run {run_id} never got {reached}")


def test_an_accepted_increment_starts_one_retrain_and_another_inside_the_cooldown_none(
    served: Path, prefect_server: str, synthetic_npz: Path
) -> None:
    from prefect import get_client
    from prefect.deployments import run_deployment

    ingest = [MNIST_PIPELINE, "ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(served / "data")]
    subprocess.run(ingest, capture_output=True, timeout=300, check=True)  # add-data adds to a published base
    with get_client(sync_client=True) as client:
        before = {found.id for found in list_triggered_runs(client, set())}
        first = add_data(served, seed=30, api_url=prefect_server)
        (run,) = wait_for(lambda: list_triggered_runs(client, before), 60, "no retrain started after add-data")
        assert wait_for_state(client, run.id, "running", 60).is_running()
        # One retrain at a time: a run asked for now (as a cron firing would be) is cancelled, not queued.
        beside = run_deployment(DEPLOYMENT, timeout=0)
        assert wait_for_state(client, beside.id, "final", 60).is_cancelled()
        finished = wait_for_state(client, run.id, "final", 120)
        assert finished.is_completed(), finished.message
        second = add_data(served, seed=31, api_url=prefect_server)  # inside the cooldown
        wait_for_accepted_event(client, second)
        time.sleep(5)  # the trigger judges an event as it arrives; a margin anyway
        assert [found.id for found in list_triggered_runs(client, before | {beside.id})] == [run.id]
        name = client.read_flow_run(run.id).name  # named when it started (`retrain-...`)
    assert name.startswith("retrain-")
    metrics = json.loads((served / "reports" / "runs" / name / "metrics.json").read_text())
    assert first in metrics["data"]["increments"] and second not in metrics["data"]["increments"]


def test_prefect_yaml_declares_the_same_trigger_and_limit() -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (retrain,) = [entry for entry in spec["deployments"] if entry["name"] == DEPLOYMENT_NAME]
    (trigger,) = [TypeAdapter(DeploymentTriggerTypes).validate_python(item) for item in retrain["triggers"]]
    served = build_increment_trigger(timedelta(minutes=10))
    fields = ("name", "expect", "match", "posture", "threshold", "within", "for_each", "parameters")
    assert {f: getattr(trigger, f) for f in fields} == {f: getattr(served, f) for f in fields}
    assert ConcurrencyLimitConfig(**retrain["concurrency_limit"]) == one_run_at_a_time()
    assert RETRAIN_PARAMETERS.items() <= retrain["parameters"].items()


@pytest.mark.parametrize("minutes", ["0", "-5", "nan", "inf", "10081"])
def test_a_cooldown_out_of_range_is_one_error_line(minutes: str, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["serve", "--cooldown", minutes]) == 2
    assert capsys.readouterr().err == (
        "mnist-pipeline: error: --cooldown: expected minutes above 0 and at most 10080 (a week), "
        f"found {float(minutes)!r}\n"
    )
