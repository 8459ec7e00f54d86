"""Prefect task: score a folder or Parquet file with a chosen model; writes predictions.parquet, posts the summary."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.predict.batch import BatchConfig, BatchSummary, score_batch
from mnist_pipeline.predict.model_choice import ModelChoice
from tasks.guard import guarded

PREDICTIONS_ARTIFACT_KEY = "batch-predictions"


@task(name="score")
@guarded
def score_task(choice: ModelChoice, config: BatchConfig, output: str, title: str) -> BatchSummary:
    """Predict every input; failed inputs are logged and listed in the artifact, the others are scored."""
    logger = get_run_logger()
    result, markdown = score_batch(choice, config, Path(output), title)
    for name, problem in result.failures:
        logger.warning("%s: %s", name, problem)
    create_markdown_artifact(markdown, key=PREDICTIONS_ARTIFACT_KEY, description="Batch predictions")
    scored, unsure = len(result.predictions.items), result.predictions.unsure
    logger.info(
        "%d inputs scored with %s (%d not sure), %d failed: %s",
        scored,
        choice.key,
        unsure,
        len(result.failures),
        output,
    )
    return BatchSummary(output, scored, unsure, [name for name, _ in result.failures], choice.key)
