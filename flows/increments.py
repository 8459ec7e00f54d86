"""The `increment-gate` flow: blocking checks -> drift report -> accept or refuse -> artifact (and event); each
batch is judged under the increments lock, so two gates never accept the same images. The `review-intake` flow:
unlabelled scans into the review queue, scored by the champion, and the `review-queue` artifact.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.files.atomic import hold_lock
from mnist_pipeline.increments.checks import DEFAULT_MIN_IMAGES
from mnist_pipeline.increments.gate import check_drift_mode, decide
from mnist_pipeline.increments.inbox import list_pending
from mnist_pipeline.increments.store import BatchVerdict, find_verdict, is_accepted
from mnist_pipeline.review.intake import ScanIntake
from mnist_pipeline.runs.names import compose_run_name
from tasks.guard import guarded
from tasks.increments import (
    accept_task,
    check_task,
    drift_task,
    publish_queue_task,
    queue_scans_task,
    refuse_task,
    report_task,
)


def open_layout(data_dir: str) -> DataLayout:
    """The layout both flows here work in (a flow parameter is a plain string)."""
    return DataLayout(Path(data_dir))


def generate_gate_run_name() -> str:
    return compose_run_name("gate", str(flow_run.id), datetime.now(UTC), 8)


def finish_accepted(layout: DataLayout, batch_id: str) -> BatchVerdict:
    """A pending batch the index already holds (a killed gate): finish accepting it without judging it again."""
    rows = accept_task(layout, batch_id, [], None)["rows"]
    report_task(layout, batch_id, [], [], None, rows)
    return BatchVerdict(batch_id, True, [], rows, note="finished: accepted by an interrupted gate")


@flow(name="increment-gate", flow_run_name=generate_gate_run_name)
@guarded
def increment_gate(
    data_dir: str = str(defaults.DATA_DIR),
    batch_ids: list[str] | None = None,
    min_images: int = DEFAULT_MIN_IMAGES,
    drift: str = "report",
    fingerprint: str | None = None,
) -> list[BatchVerdict]:
    """Judge the given batches (default: every pending one) against dataset version `fingerprint` (default: the
    current one); a verdict per batch, with a note when this run did not judge it."""
    drift_mode = check_drift_mode(drift)
    layout = open_layout(data_dir)
    against = layout.pin(fingerprint) if fingerprint else layout
    outcomes = []
    for batch_id in batch_ids if batch_ids is not None else list_pending(layout):
        with hold_lock(layout.increments_lock):
            if batch_id not in list_pending(layout):
                if batch_ids is None:
                    continue  # another gate judged it meanwhile
                verdict = find_verdict(layout, batch_id)
                if verdict is not None:  # another gate or a run judged it meanwhile
                    outcomes.append(dataclasses.replace(verdict, note="judged earlier by another gate"))
                    continue
                # neither pending nor judged: check_task fails, naming the folder it expected
            if is_accepted(layout, batch_id):
                outcomes.append(finish_accepted(layout, batch_id))
                continue
            checks = check_task(layout, batch_id, against, min_images)
            passed = all(check.success for check in checks)
            measured = drift_task(layout, batch_id, against) if passed else None
            reasons = decide(checks, measured.report if measured else None, drift_mode)
            rows = None
            if reasons:
                refuse_task(layout, batch_id, reasons)
            else:
                rows = accept_task(layout, batch_id, checks, measured.report.to_dict() if measured else None)["rows"]
            report_task(layout, batch_id, checks, reasons, measured, rows)
        drift_lines = measured.report.lines() if measured else []
        outcomes.append(BatchVerdict(batch_id, not reasons, reasons, rows, drift_lines))
    if layout.review.is_dir():  # labels from the review page: its audit estimate, as of this batch
        publish_queue_task(layout)
    return outcomes


def generate_intake_run_name() -> str:
    return compose_run_name("scans", str(flow_run.id), datetime.now(UTC), 8)


@flow(name="review-intake", flow_run_name=generate_intake_run_name)
@guarded
def review_intake(source: str, data_dir: str = str(defaults.DATA_DIR), note: str | None = None) -> ScanIntake:
    layout = open_layout(data_dir)
    intake = queue_scans_task(layout, Path(source), note)
    publish_queue_task(layout)
    return intake
