"""Prefect tasks of the review queue: queue and score scans; publish the queue's summary and audit estimate."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.review.intake import ScanIntake, queue_scans, render_queue_markdown
from tasks.guard import guarded

REVIEW_ARTIFACT_KEY = "review-queue"


@task(name="queue-scans")
@guarded
def queue_scans_task(layout: DataLayout, source: Path, note: str | None) -> ScanIntake:
    intake = queue_scans(layout, source, note)
    for name, problem in intake.unreadable:
        get_run_logger().warning("%s: %s", name, problem)
    return intake


@task(name="publish-review-queue")
@guarded
def publish_queue_task(layout: DataLayout) -> None:
    create_markdown_artifact(render_queue_markdown(layout), key=REVIEW_ARTIFACT_KEY, description="Review queue")
