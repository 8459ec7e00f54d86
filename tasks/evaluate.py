"""Prefect task: evaluate one saved model on the test split and record its predictions.

Cached on the evaluation key (model key, test split content, --test-limit, evaluation code): an unchanged model
on unchanged test data is not evaluated again, and TensorFlow is not even imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.runs.cache_entries import evaluate_record_name
from tasks.guard import guarded


def key_from_parameters(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the precomputed evaluation key passed in by the flow."""
    return evaluate_record_name(parameters["model"], parameters["key"])


@task(name="evaluate", cache_key_fn=key_from_parameters, persist_result=True, result_serializer="json")
@guarded
def evaluate_task(
    trained: dict[str, Any], model: str, key: str, data_dir: str, fingerprint: str, test_limit: int | None
) -> dict[str, Any]:
    """Accuracy, loss, per-class metrics and confusion matrix on the (limited) test split of `fingerprint`."""
    from mnist_pipeline.modeling.evaluation import record_evaluation

    layout = DataLayout(Path(data_dir)).pin(fingerprint)
    evaluated = record_evaluation(layout, model, trained["key"], key, test_limit)
    get_run_logger().info(
        "%s: test accuracy %.4f, loss %.4f on %d images",
        model,
        evaluated["test_accuracy"],
        evaluated["test_loss"],
        evaluated["test_rows"],
    )
    return evaluated
