"""The retrain that starts when data arrives: against a real `prefect server start`, `mnist-pipeline serve`
registers a deployment trigger on the increment gate's event, a watch for lost runs and a concurrency limit; a
burst of batches accepted by `mnist-pipeline add-data` gets one retrain, started once the cooldown after the first
has passed, with no further command; when that retrain is killed with its `serve` (SIGKILL), the watch marks it
Crashed and the restarted `serve` runs the retrain still owed, once. Also: which increment is owed, and
prefect.yaml says the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deploy import (
    DEPLOYMENT_NAME,
    INCREMENT_PARAMETERS,
    RETRAIN_PARAMETERS,
    build_increment_trigger,
    one_run_at_a_time,
    run_owed_retrain,
)
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.increments import ACCEPTED_EVENT
from mnist_pipeline.increments.inbox import land_batch
from mnist_pipeline.increments.sources import read_labelled_batch
from tests.increment_support import draw_strokes, write_image_folder
from tests.support import start_process, stop_process

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = f"mnist-pipeline/{DEPLOYMENT_NAME}"
LOST_RUNS = f"{DEPLOYMENT_NAME}-lost-runs"
# Long enough for the burst below (one gate judging three batches in turn) to end inside it.
COOLDOWN = timedelta(minutes=0.5)
MNIST_PIPELINE = str(Path(sys.executable).with_name("mnist-pipeline"))


def read_trigger_automations(client: Any) -> list[Any]:
    """The automations the deployment owns (its triggers)."""
    deployment = client.read_deployment_by_name(DEPLOYMENT)
    return client.read_resource_related_automations(f"prefect.deployment.{deployment.id}")


def serve(work: Path, npz: Path, api_url: str, replacing: set[Any]) -> subprocess.Popen:
    """Start `mnist-pipeline serve` (tiny training: one small model, one epoch) and wait until its trigger's
    automation, with this cooldown, has replaced any other (those `replacing` included)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    command = [MNIST_PIPELINE, "serve", "--cooldown", str(COOLDOWN.total_seconds() / 60), "--source", f"npz:{npz}"]
    command += ["--data-dir", str(work / "data"), "--reports-dir", str(work / "reports")]
    command += ["--models", "ann_no_hidden", "--epochs", "ann_no_hidden=1"]
    log = (work / "serve.log").open("a")
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    process = start_process(command, env=env, stdout=log, cwd=work)
    log.close()
    with get_client(sync_client=True) as client:

        def registered() -> bool:
            assert process.poll() is None, (work / "serve.log").read_text()
            try:
                found = read_trigger_automations(client)
                return [(a.trigger.within, a.id in replacing) for a in found] == [(COOLDOWN, False)]
            except ObjectNotFound:
                return False

        wait_for(registered, 120, "the trigger's automation never registered")
    return process


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
def served(
    prefect_server: str, synthetic_npz: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`serve` running; the test that kills it puts the restarted one in its place."""
    work = tmp_path_factory.mktemp("triggered")
    remove_runs_nobody_served(prefect_server)
    state = {"work": work, "since": datetime.now(UTC), "process": serve(work, synthetic_npz, prefect_server, set())}
    try:
        yield state
    finally:
        stop_process(state["process"])


def write_batch(work: Path, seed: int) -> Path:
    """A folder of 40 new digit-like pictures."""
    images, labels = draw_strokes(40, seed=seed)
    return write_image_folder(work / f"batch-{seed}", images, labels)


def accept_pending_batches(work: Path, api_url: str) -> list[str]:
    """`mnist-pipeline add-data --pending`; returns the ids of the batches it accepted."""
    done = subprocess.run(
        [MNIST_PIPELINE, "add-data", "--pending", "--data-dir", str(work / "data")],
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("accepted: ")]


def find_event(client: Any, name: str, resource_id: str) -> list[Any]:
    """The latest event of that name about that resource, once the server has it. The filter is made at each call:
    its time window ends when it is made."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    about = EventFilter(event=EventNameFilter(name=[name]), resource=EventResourceFilter(id=[resource_id]))
    return client.read_events(filter=about, limit=1).events


def read_accepted_at(client: Any, batch_id: str) -> datetime:
    """When the gate accepted this batch, by its event (events reach the server asynchronously)."""
    about = f"mnist-pipeline.increment.{batch_id}"
    return wait_for(lambda: find_event(client, ACCEPTED_EVENT, about), 60, f"no event about {batch_id}")[0].occurred


def list_triggered_runs(client: Any, since: datetime) -> list[Any]:
    """The deployment's flow runs created since then that its cron schedule did not create, oldest first (earlier
    modules may have run the same deployment on this server)."""
    from prefect.client.schemas.filters import DeploymentFilter
    from prefect.client.schemas.sorting import FlowRunSort

    deployment = client.read_deployment_by_name(DEPLOYMENT)
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}), sort=FlowRunSort.EXPECTED_START_TIME_ASC
    )
    return [run for run in runs if not run.auto_scheduled and run.created >= since]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(1)
    return found


def wait_for_state(client: Any, run_id: Any, reached: str, timeout: float) -> Any:
    """The run's state once it is final, or (`reached="running"`) once it runs."""

    def check() -> Any:
        state = client.read_flow_run(run_id).state
        done = state is not None and (state.is_final() or (reached == "running" and state.is_running()))
        return state if done else None

    return wait_for(check, timeout, f"flow run {run_id} never got {reached}")


@pytest.fixture(scope="module")
def burst(served: dict[str, Any], prefect_server: str, synthetic_npz: Path) -> dict[str, Any]:
    """Three batches landed, then accepted one after the other by `add-data --pending`, and the retrain they got, once
    it runs."""
    from prefect import get_client

    work = served["work"]
    ingest = [MNIST_PIPELINE, "ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(work / "data")]
    subprocess.run(ingest, capture_output=True, timeout=300, check=True)  # add-data adds to a published base
    layout = DataLayout(work / "data")
    for seed in (30, 31, 32):
        land_batch(layout, read_labelled_batch(write_batch(work, seed)), f"batch-{seed}", None)
    accepted = accept_pending_batches(work, prefect_server)
    with get_client(sync_client=True) as client:
        times = sorted(read_accepted_at(client, batch_id) for batch_id in accepted)
        (run,) = wait_for(lambda: list_triggered_runs(client, served["since"]), 60, "no retrain after add-data")
        wait_for_state(client, run.id, "running", COOLDOWN.total_seconds() + 60)
        return {"accepted": accepted, "first": times[0], "last": times[-1], "run": client.read_flow_run(run.id)}


def test_serve_registers_the_trigger_the_watch_for_lost_runs_and_one_run_at_a_time(
    served: dict[str, Any], prefect_server: str
) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        (automation,) = read_trigger_automations(client)
        (lost,) = client.read_automations_by_name(LOST_RUNS)
    trigger = automation.trigger
    assert trigger.expect == {ACCEPTED_EVENT}
    assert trigger.match.model_dump() == {"prefect.resource.id": "mnist-pipeline.increment.*"}
    assert (trigger.posture, trigger.threshold, trigger.within) == ("Reactive", 1, COOLDOWN)
    assert not trigger.for_each  # one window for all increments, not one per increment
    (action,) = automation.actions
    assert (action.schedule_after, action.parameters) == (COOLDOWN, INCREMENT_PARAMETERS)
    # Served runs beat every 30 s; two missed beats make a run lost.
    assert lost.trigger.within == timedelta(seconds=60) and lost.trigger.for_each == {"prefect.resource.id"}
    assert (lost.trigger.posture, lost.trigger.after) == ("Proactive", {"prefect.flow-run.heartbeat"})
    assert lost.trigger.match_related.model_dump() == {"prefect.resource.id": f"prefect.tag.{DEPLOYMENT_NAME}"}
    assert DEPLOYMENT_NAME in deployment.tags
    assert [(found.type, found.state) for found in lost.actions] == [("change-flow-run-state", "CRASHED")]
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
    assert deployment.parameters["require_new_data"] is True
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 3 * * 1", "UTC")]


def test_a_burst_of_batches_gets_one_retrain_started_after_it(burst: dict[str, Any]) -> None:
    run = burst["run"]
    assert len(burst["accepted"]) == 3
    # Scheduled on the first batch's event (the trigger fires a few seconds after it), to start one cooldown later.
    assert COOLDOWN <= run.expected_start_time - burst["first"] < COOLDOWN + timedelta(seconds=30)
    assert run.start_time > burst["last"]
    # The trigger's parameters merged into the deployment's: it fine-tunes, and still trains only for new data.
    assert (run.parameters["warm_start"], run.parameters["require_new_data"]) == (True, True)


def test_a_retrain_killed_with_its_serve_runs_again_once_serve_restarts(
    served: dict[str, Any], burst: dict[str, Any], prefect_server: str, synthetic_npz: Path
) -> None:
    from prefect import get_client

    work, lost_run = served["work"], burst["run"]
    with get_client(sync_client=True) as client:
        run_id = f"prefect.flow-run.{lost_run.id}"
        wait_for(lambda: find_event(client, "prefect.flow-run.heartbeat", run_id), 60, "the retrain sent no heartbeat")
        triggers = {found.id for found in read_trigger_automations(client)}
        (watch,) = client.read_automations_by_name(LOST_RUNS)
        assert client.read_flow_run(lost_run.id).state.is_running()
        os.killpg(served["process"].pid, signal.SIGKILL)  # serve and the run's process, as a crash takes them
        served["process"].wait(timeout=10)
        served["process"] = serve(work, synthetic_npz, prefect_server, replacing=triggers)

        def list_later_runs() -> list[Any]:
            return list_triggered_runs(client, served["since"])[1:]

        wait_for(list_later_runs, 30, "the restarted serve did not run the owed retrain")
        run_owed_retrain(lost_run.deployment_id, str(work / "data"))  # as a second restart would: nothing more
        (again,) = list_later_runs()
        crashed = wait_for_state(client, lost_run.id, "final", 150)
        assert crashed.is_crashed() and "no heartbeat" in crashed.message
        finished = wait_for_state(client, again.id, "final", 180)
        assert finished.is_completed(), finished.message
        assert [found.id for found in client.read_automations_by_name(LOST_RUNS)] == [watch.id]  # kept, not redone
        assert len(read_trigger_automations(client)) == 1  # replaced, not added
        again = client.read_flow_run(again.id)
    assert again.parameters["warm_start"] is True
    metrics = json.loads((work / "reports" / "runs" / again.name / "metrics.json").read_text())
    assert set(burst["accepted"]) <= set(metrics["data"]["increments"])


def test_prefect_yaml_declares_the_same_trigger_and_limit() -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (retrain,) = [entry for entry in spec["deployments"] if entry["name"] == DEPLOYMENT_NAME]
    (trigger,) = [TypeAdapter(DeploymentTriggerTypes).validate_python(item) for item in retrain["triggers"]]
    served = build_increment_trigger(timedelta(minutes=10))
    fields = ("name", "expect", "match", "posture", "threshold", "within", "schedule_after", "for_each", "parameters")
    assert {f: getattr(trigger, f) for f in fields} == {f: getattr(served, f) for f in fields}
    assert ConcurrencyLimitConfig(**retrain["concurrency_limit"]) == one_run_at_a_time()
    assert RETRAIN_PARAMETERS.items() <= retrain["parameters"].items()


def test_an_increment_is_owed_until_a_model_trained_on_a_version_holding_it_is_recorded(tmp_path: Path) -> None:
    import numpy as np

    from mnist_pipeline.champion.registry import force_promote
    from mnist_pipeline.champion.rule import Candidate
    from mnist_pipeline.increments.hashes import append_to_index, read_index
    from mnist_pipeline.increments.versions import find_untrained_increment

    layout = DataLayout(tmp_path / "data")
    assert find_untrained_increment(layout) is None  # nothing accepted, nothing owed
    layout.increments.mkdir(parents=True)
    for number, increment in enumerate(("b-1", "b-2")):
        shas = np.array([bytes([number]) * 16], dtype="S16")
        append_to_index(layout, read_index(layout), shas, np.array([False]), increment)

    def record_model_trained_on(fingerprint: str, increments: list[str]) -> None:
        manifest = layout.pin(fingerprint).manifest
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"fingerprint": fingerprint, "increments": increments}))
        trained = Candidate(fingerprint, "m.keras", "r", fingerprint, 10, 0.9, (0.9,) * 10)
        force_promote(layout.registry, "cnn", trained, reason="test", at="2026-12-07T03:00:00Z")

    assert find_untrained_increment(layout) == "b-2"
    record_model_trained_on("e" * 64, ["b-1"])
    assert find_untrained_increment(layout) == "b-2"
    record_model_trained_on("f" * 64, ["b-1", "b-2"])
    assert find_untrained_increment(layout) is None


@pytest.mark.parametrize("minutes", ["0", "-5", "nan", "inf", "10081"])
def test_a_cooldown_out_of_range_is_one_error_line(minutes: str, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["serve", "--cooldown", minutes]) == 2
    assert capsys.readouterr().err == (
        "mnist-pipeline: error: --cooldown: expected minutes above 0 and at most 10080 (a week), "
        f"found {float(minutes)!r}\n"
    )
