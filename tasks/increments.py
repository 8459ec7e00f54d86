"""Prefect tasks wrapping the increment gate's steps (check, measure drift, accept or refuse, report) and the review
queue's (queue and score scans; publish the queue's summary and audit estimate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.increments import ACCEPTED_EVENT, RESOURCE_PREFIX
from mnist_pipeline.increments.drift_report import render_drift_markdown, render_increment_markdown
from mnist_pipeline.increments.gate import DriftOutcome, check_batch, measure_drift
from mnist_pipeline.increments.inbox import read_pending, refuse_batch
from mnist_pipeline.increments.store import accept_batch, discard_unfinished
from mnist_pipeline.review.intake import ScanIntake, queue_scans, render_queue_markdown
from mnist_pipeline.validation.results import CheckResult
from tasks.guard import guarded

INCREMENT_ARTIFACT_KEY = "mnist-increment"
REVIEW_ARTIFACT_KEY = "review-queue"


@task(name="check-batch")
@guarded
def check_task(layout: DataLayout, batch_id: str, against: DataLayout, min_images: int) -> list[CheckResult]:
    """The blocking checks against the dataset version `against`; a failed check is a result, not an error."""
    checks = check_batch(layout, against, read_pending(layout, batch_id), min_images)
    logger = get_run_logger()
    for check in checks:
        logger.info("%s: %s", batch_id, check.message)
    return checks


@task(name="measure-drift")
@guarded
def drift_task(layout: DataLayout, batch_id: str, against: DataLayout) -> DriftOutcome:
    """The drift report against the training data of `against` (and the champion's outputs, when there is one)."""
    outcome = measure_drift(layout, against, read_pending(layout, batch_id))
    for line in outcome.report.lines():
        get_run_logger().info("%s: drift flagged: %s", batch_id, line)
    return outcome


@task(name="accept-batch")
@guarded
def accept_task(
    layout: DataLayout, batch_id: str, checks: list[CheckResult], drift: dict[str, Any] | None
) -> dict[str, Any]:
    """Make the batch an immutable increment; returns its manifest."""
    return accept_batch(layout, read_pending(layout, batch_id), checks, drift)


@task(name="refuse-batch")
@guarded
def refuse_task(layout: DataLayout, batch_id: str, reasons: list[str]) -> str:
    """Move the batch to inbox/refused/ with its reasons, dropping what an interrupted accept of it left."""
    discard_unfinished(layout, batch_id)
    return str(refuse_batch(layout, batch_id, reasons))


@task(name="report-increment")
@guarded
def report_task(
    layout: DataLayout,
    batch_id: str,
    checks: list[CheckResult],
    reasons: list[str],
    drift: DriftOutcome | None,
    rows: dict[str, int] | None,
) -> None:
    """The `mnist-increment` artifact; on acceptance, the `mnist.increment.accepted` event (no images in it)."""
    drift_markdown = render_drift_markdown(drift.report, batch_id, drift.picture) if drift is not None else None
    markdown = render_increment_markdown(batch_id, not reasons, checks, reasons, drift_markdown)
    verdict = "accepted" if not reasons else "refused"
    create_markdown_artifact(markdown, key=INCREMENT_ARTIFACT_KEY, description=f"Batch {batch_id} {verdict}")
    if not reasons and rows is not None:
        emit_event(
            event=ACCEPTED_EVENT,
            resource={"prefect.resource.id": RESOURCE_PREFIX + batch_id},
            payload={"rows": rows, "data_dir": str(layout.root)},
        )


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
