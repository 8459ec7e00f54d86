"""Prefect task: the validation gate (`runs.gate`). A failed expectation fails the task, so no training starts."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.report.artifact_content import render_validation_markdown
from mnist_pipeline.runs.gate import validate_or_reuse
from mnist_pipeline.validation import raise_if_failed
from tasks.guard import guarded

VALIDATION_ARTIFACT_KEY = "mnist-validation"


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
