"""Prefect tasks of the data stages: write a dataset version, grow it by the increments, the validation gate
(`runs.gate`; a failed expectation fails the task, so no training starts), publish what passed."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.data.ingest import ingest, publish_version
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.increments.versions import grow_version
from mnist_pipeline.report.artifact_content import render_validation_markdown
from mnist_pipeline.runs.gate import validate_or_reuse
from mnist_pipeline.validation import raise_if_failed
from tasks.guard import guarded

VALIDATION_ARTIFACT_KEY = "mnist-validation"


@task(name="ingest", retries=0)
@guarded
def ingest_task(source: str, layout: DataLayout, image_shape: tuple[int, int]) -> dict[str, Any]:
    """Write `source` as a dataset version, refusing images not of `image_shape`; returns its manifest (the version
    becomes current only after the gate)."""
    return ingest(source, layout, image_shape).manifest


@task(name="publish")
@guarded
def publish_task(layout: DataLayout, fingerprint: str) -> None:
    """Make the version that passed the gate current; a separate step so a cached validation still publishes."""
    publish_version(layout, fingerprint)


@task(name="grow")
@guarded
def grow_task(layout: DataLayout, base_fingerprint: str) -> dict[str, Any]:
    """Write the base version grown by the accepted increments; returns its manifest (the base's without any)."""
    return grow_version(layout, base_fingerprint).manifest


@task(name="validate")
@guarded
def validate_task(layout: DataLayout, fingerprint: str, image_shape: tuple[int, int]) -> dict[str, Any]:
    """Validate the version this run ingested; returns the JSON summary or raises ValidationFailed."""
    summary, report = validate_or_reuse(layout, fingerprint, image_shape)
    logger = get_run_logger()
    if report is None:
        logger.info("validate: reused the recorded pass (same dataset files, same suite)")
        return summary
    for line in report.summary_lines():
        logger.info(line)
    if not report.success:
        create_markdown_artifact(
            render_validation_markdown(summary), key=VALIDATION_ARTIFACT_KEY, description="Validation failed"
        )
    raise_if_failed(report)
    return summary
