"""The deployments `mnist-pipeline serve` registers and runs: scheduled retrain, weekly gc, batch predict.

The retrain also starts one cooldown after an accepted increment, with every increment accepted by then, one
retrain at a time.
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

if TYPE_CHECKING:
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
    increment of the burst. No `for_each`: every increment shares the one window."""
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
    )


def one_run_at_a_time() -> ConcurrencyLimitConfig:
    """A deployment concurrency limit of 1 whose extra runs wait for the slot: a cancelled one could be the run that
    a window scheduled for its increments."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def serve_scheduled_retrain(cron: str, timezone: str, cooldown: timedelta, parameters: dict[str, Any]) -> None:
    """Register `mnist-pipeline/scheduled-retrain` (cron, and a trigger on accepted increments),
    `batch-predict/on-demand` and `mnist-maintenance/weekly-gc` (Mondays 04:00 in `timezone`); serve them until
    stopped. Serving again replaces the trigger's automation (Prefect deletes the ones the deployment owns)."""
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
        tags=["mnist", "scheduled-retrain"],
        description=RETRAIN_DESCRIPTION,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
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
    serve(retrain, predict, maintenance)
