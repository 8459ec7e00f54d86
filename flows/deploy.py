"""The deployments `mnist-pipeline serve` registers and runs: scheduled retrain, weekly gc, batch predict."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from mnist_pipeline.errors import PipelineError

DEPLOYMENT_NAME = "scheduled-retrain"
BATCH_PREDICT_DEPLOYMENT = "on-demand"
MAINTENANCE_DEPLOYMENT, MAINTENANCE_CRON = "weekly-gc", "0 4 * * 1"
DEFAULT_CRON = "0 3 * * 1"
DEFAULT_TIMEZONE = "UTC"
CRON_ENV, TIMEZONE_ENV = "MNIST_PIPELINE_CRON", "MNIST_PIPELINE_TIMEZONE"


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


def serve_scheduled_retrain(cron: str, timezone: str, parameters: dict[str, Any]) -> None:
    """Register `mnist-pipeline/scheduled-retrain` (cron), `batch-predict/on-demand` and
    `mnist-maintenance/weekly-gc` (Mondays 04:00 in `timezone`); serve them until stopped."""
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
        parameters=parameters,
        tags=["mnist", "scheduled-retrain"],
        description="Weekly retraining of the three MNIST models with champion/challenger promotion.",
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
