"""Prefect task: the validation gate. A failed expectation fails the task, so no training starts.

The version this run ingested becomes the current dataset (`parquet`) only when it passes; a failing one is set
aside as `datasets/<version>.failed-validation` and the previous current dataset stays current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.artifact_content import render_validation_markdown
from mnist_pipeline.ingest import publish_if_valid
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.validation import raise_if_failed

VALIDATION_ARTIFACT_KEY = "mnist-validation"


@task(name="validate")
def validate_task(data_dir: str, fingerprint: str) -> dict[str, Any]:
    """Validate the version this run ingested, publish it if valid; returns the summary or raises ValidationFailed."""
    report = publish_if_valid(DataLayout(Path(data_dir)), fingerprint)
    summary = report.to_dict()
    logger = get_run_logger()
    for line in report.summary_lines():
        logger.info(line)
    if not report.success:
        create_markdown_artifact(
            render_validation_markdown(summary), key=VALIDATION_ARTIFACT_KEY, description="Validation failed"
        )
    raise_if_failed(report)
    return summary
