"""The deployments `mnist-pipeline serve` registers and runs: scheduled retrain, weekly gc, batch predict.

The retrain also starts one cooldown after an accepted increment, with every increment accepted by then, one
retrain at a time; a retrain whose `serve` was killed is marked Crashed, and the restarted `serve` runs it again.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.increments import ACCEPTED_EVENT, RESOURCE_PREFIX

DEPLOYMENT_NAME = "scheduled-retrain"
BATCH_PREDICT_DEPLOYMENT = "on-demand"
MAINTENANCE_DEPLOYMENT, MAINTENANCE_CRON = "weekly-gc", "0 4 * * 1"
DEFAULT_CRON = "0 3 * * 1"
DEFAULT_TIMEZONE = "UTC"
CRON_ENV, TIMEZONE_ENV = "MNIST_PIPELINE_CRON", "MNIST_PIPELINE_TIMEZONE"
DEFAULT_COOLDOWN_MINUTES, MAX_COOLDOWN_MINUTES = 10.0, 7 * 24 * 60
RETRAIN_DESCRIPTION = (
    "Weekly, and one cooldown after an accepted increment, retraining of the MNIST models with "
    "champion/challenger promotion; trains nothing when the champions already saw the current dataset."
)
# What the scheduled and triggered retrains set on top of the served options (docs/operations.md says why).
RETRAIN_PARAMETERS = {"require_new_data": True}
# A retrain for new increments fine-tunes the champions (the cron's run trains anew; docs/training.md says why).
INCREMENT_PARAMETERS = {"warm_start": True}
# Served runs send a heartbeat this often (seconds; Prefect's default is 180) unless the environment says otherwise.
HEARTBEAT_ENV, SERVED_HEARTBEAT = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30"

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events import DeploymentEventTrigger


def resolve_schedule(cron: str | None, timezone: str | None) -> tuple[str, str]:
    """Option, else environment, else weekly on Monday 03:00 UTC; both checked before anything registers."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cronsim import CronSim, CronSimError

    cron = cron or os.environ.get(CRON_ENV) or DEFAULT_CRON
    timezone = timezone or os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE
    try:
        CronSim(cron, datetime.now(UTC))
    except CronSimError as exc:
        raise PipelineError(f"--cron: expected a cron expression like '{DEFAULT_CRON}', found {cron!r}") from exc
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PipelineError(f"--timezone: expected an IANA zone like 'Europe/Berlin', found {timezone!r}") from exc
    return cron, timezone


def check_cooldown(minutes: float | None) -> timedelta:
    """The trigger's cooldown: `--cooldown` minutes (default 10), above 0 and at most a week (the cron's period by
    default: the weekly run would come first)."""
    minutes = DEFAULT_COOLDOWN_MINUTES if minutes is None else minutes
    if not 0 < minutes <= MAX_COOLDOWN_MINUTES:
        raise PipelineError(
            f"--cooldown: expected minutes above 0 and at most {MAX_COOLDOWN_MINUTES} (a week), found {minutes!r}"
        )
    return timedelta(minutes=minutes)


def build_increment_trigger(cooldown: timedelta) -> DeploymentEventTrigger:
    """Run the deployment one cooldown after an increment is accepted: reactive, so the first event fires and later
    ones are ignored for `cooldown`; `schedule_after` starts the run when that window closes, so it trains every
    increment of the burst. No `for_each`: every increment shares the one window. The run fine-tunes the champions
    (Prefect merges these parameters into the deployment's)."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name=f"{DEPLOYMENT_NAME}-on-new-data",
        description="Retrain one cooldown after the increment gate accepts a batch, with every batch accepted by then.",
        expect={ACCEPTED_EVENT},
        match={"prefect.resource.id": RESOURCE_PREFIX + "*"},
        posture="Reactive",
        threshold=1,
        within=cooldown,
        schedule_after=cooldown,
        parameters=INCREMENT_PARAMETERS,
    )


def one_run_at_a_time() -> ConcurrencyLimitConfig:
    """A deployment concurrency limit of 1 whose extra runs wait for the slot: a cancelled one could be the run that
    a window scheduled for its increments."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def watch_for_lost_runs(heartbeat: timedelta) -> None:
    """Prefect's zombie detection for the retrain's runs (tagged with its name): one silent for two heartbeats lost
    its process (a `serve` killed with -9), so it is marked Crashed, which frees the one retrain slot. An earlier
    `serve`'s automation is kept when it has this heartbeat: replacing it would forget the runs it is watching."""
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    silence = 2 * heartbeat
    automation = AutomationCore(
        name=f"{DEPLOYMENT_NAME}-lost-runs",
        description="Mark Crashed a retrain whose heartbeats stopped: its process died with its `serve`.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},  # another heartbeat, or a final state
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.tag.{DEPLOYMENT_NAME}"},
            for_each={"prefect.resource.id"},
            posture="Proactive",
            threshold=1,
            within=silence,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"no heartbeat for {silence}: its process died")],
    )
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(automation.name)
        if [earlier.trigger.within for earlier in found] != [silence]:
            for earlier in found:
                client.delete_automation(earlier.id)
            client.create_automation(automation)


def run_owed_retrain(deployment_id: UUID, data_dir: str) -> None:
    """Run the retrain when an accepted increment is in no trained model and no retrain but the cron's is scheduled
    (one would grow it): the run training it died with an earlier `serve` (kill -9), or never started."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.deployments import run_deployment

    from flows.increments import open_layout
    from mnist_pipeline.increments.versions import find_untrained_increment

    if find_untrained_increment(open_layout(data_dir)) is None:
        return
    due = FlowRunFilter(deployment_id={"any_": [deployment_id]}, state={"type": {"any_": ["SCHEDULED"]}})
    with get_client(sync_client=True) as client:
        if all(run.auto_scheduled for run in client.read_flow_runs(flow_run_filter=due)):
            run_deployment(deployment_id, parameters=INCREMENT_PARAMETERS, timeout=0)


def serve_scheduled_retrain(cron: str, timezone: str, cooldown: timedelta, parameters: dict[str, Any]) -> None:
    """Register `mnist-pipeline/scheduled-retrain` (cron, a trigger on accepted increments, the watch for lost runs;
    a run now when an increment is owed), `batch-predict/on-demand` and `mnist-maintenance/weekly-gc` (Mondays 04:00
    in `timezone`); serve them until stopped. Serving again replaces the trigger's automation (Prefect deletes the
    ones the deployment owns)."""
    if not os.environ.get("PREFECT_API_URL"):
        raise PipelineError(
            "PREFECT_API_URL: expected the URL of a running Prefect server (start one with `make server`, then "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api), found it unset"
        )
    from prefect import serve
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.batch_predict import batch_predict
    from flows.maintenance import mnist_maintenance
    from flows.pipeline import mnist_pipeline

    retrain = mnist_pipeline.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[Cron(cron, timezone=timezone)],
        triggers=[build_increment_trigger(cooldown)],
        concurrency_limit=one_run_at_a_time(),
        parameters={**parameters, **RETRAIN_PARAMETERS},
        tags=["mnist", DEPLOYMENT_NAME],
        description=RETRAIN_DESCRIPTION,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    heartbeat = timedelta(seconds=int(os.environ.get(HEARTBEAT_ENV, SERVED_HEARTBEAT)))
    watch_for_lost_runs(heartbeat)
    run_owed_retrain(retrain.apply(), parameters["data_dir"])  # registered now for its id; `serve` does it again
    predict = batch_predict.to_deployment(
        name=BATCH_PREDICT_DEPLOYMENT,
        parameters={"data_dir": parameters["data_dir"], "output_dir": f"{parameters['reports_dir']}/predictions"},
        tags=["mnist", "batch-predict"],
        description="Score a folder of digit images or a Parquet split with the current champion.",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    maintenance = mnist_maintenance.to_deployment(
        name=MAINTENANCE_DEPLOYMENT,
        schedules=[Cron(MAINTENANCE_CRON, timezone=timezone)],
        parameters={"data_dir": parameters["data_dir"]},
        tags=["mnist", "maintenance"],
        description="Weekly garbage collection of the data dir: old unused models, evaluations and datasets.",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    serve(retrain, predict, maintenance, heartbeat_seconds=heartbeat.total_seconds())
