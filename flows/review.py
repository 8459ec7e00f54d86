"""The `review-intake` flow: unlabelled scans into the review queue, scored by the champion, and the queue's
summary (with the audit estimate) as the `review-queue` artifact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.review.intake import ScanIntake
from mnist_pipeline.runs.names import compose_run_name
from tasks.guard import guarded
from tasks.review import publish_queue_task, queue_scans_task


def generate_intake_run_name() -> str:
    return compose_run_name("scans", str(flow_run.id), datetime.now(UTC), 8)


@flow(name="review-intake", flow_run_name=generate_intake_run_name)
@guarded
def review_intake(source: str, data_dir: str = str(defaults.DATA_DIR), note: str | None = None) -> ScanIntake:
    layout = DataLayout(Path(data_dir))
    intake = queue_scans_task(layout, Path(source), note)
    publish_queue_task(layout)
    return intake
