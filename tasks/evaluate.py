"""Prefect task: evaluate one saved model on the test split and record its predictions, or reuse the record.

Reused on the evaluation key (model key, test split content, --test-limit, evaluation code): an unchanged model
on unchanged test data is not evaluated again, and TensorFlow is not even imported (`modeling.jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from mnist_pipeline.data.layout import DataLayout
from tasks.guard import guarded


@task(name="evaluate")
@guarded
def evaluate_task(
    trained: dict[str, Any], model: str, key: str, data_dir: str, fingerprint: str, test_limit: int | None
) -> dict[str, Any]:
    """Accuracy, loss, per-class metrics and confusion matrix on the (limited) test split of `fingerprint`."""
    from mnist_pipeline.modeling.jobs import run_evaluation_job

    layout = DataLayout(Path(data_dir)).pin(fingerprint)
    evaluated = run_evaluation_job(layout, model, trained["key"], key, test_limit, trained["reused"])
    get_run_logger().info(
        "%s: test accuracy %.4f, loss %.4f on %d images",
        model,
        evaluated["test_accuracy"],
        evaluated["test_loss"],
        evaluated["test_rows"],
    )
    return evaluated
