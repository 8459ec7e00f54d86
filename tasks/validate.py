"""Prefect task: the validation gate. A failed expectation fails the task, so no training starts.

A failing version is set aside as `datasets/<version>.failed-validation` and the previous current dataset stays
current; a passing one is made current by `tasks.ingest.publish_task`. A passed validation is cached on the
dataset version's file bytes, the declared image size and the suite's code: unchanged data is not checked again,
while an edited Parquet file or a changed suite is. Failures are never cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.context import TaskRunContext

from mnist_pipeline.data.ingest import validate_version
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.report.artifact_content import render_validation_markdown
from mnist_pipeline.runs.cache_keys import compute_validation_key
from mnist_pipeline.validation import raise_if_failed
from tasks.guard import guarded

VALIDATION_ARTIFACT_KEY = "mnist-validation"


def key_from_dataset(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the pinned dataset version's file bytes, the declared image size and the suite's code."""
    version = DataLayout(Path(parameters["data_dir"])).pin(parameters["fingerprint"]).parquet
    return f"validate-{compute_validation_key(version, tuple(parameters['image_shape']))}"


@task(name="validate", cache_key_fn=key_from_dataset, persist_result=True, result_serializer="json")
@guarded
def validate_task(data_dir: str, fingerprint: str, image_shape: tuple[int, int]) -> dict[str, Any]:
    """Validate the version this run ingested; returns the JSON summary or raises ValidationFailed."""
    report = validate_version(DataLayout(Path(data_dir)), fingerprint, image_shape)
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
