"""Prefect task: evaluate one saved model on the `test` set and, when there is one, the `new` set, recording each
evaluation's predictions, or reuse the records.

Each evaluation is reused on its own key (model key, that split's content, the limit, evaluation code): an unchanged
model on unchanged data is not evaluated again, and TensorFlow is not even imported (`modeling.jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.runs.metrics import summarize_evaluations
from tasks.guard import guarded


@task(name="evaluate")
@guarded
def evaluate_task(
    trained: dict[str, Any],
    model: str,
    key: str,
    data_dir: str,
    fingerprint: str,
    test_limit: int | None,
    new_key: str | None = None,
) -> dict[str, Any]:
    """Scores on the (limited) `test` split of `fingerprint` and, with `new_key`, on its whole `new` split."""
    from mnist_pipeline.modeling.jobs import run_evaluation_job

    layout = DataLayout(Path(data_dir)).pin(fingerprint)
    model_key, reused = trained["key"], trained["reused"]
    evaluations = {"test": run_evaluation_job(layout, model, model_key, key, reused, "test", test_limit)}
    if new_key is not None:
        evaluations["new"] = run_evaluation_job(layout, model, model_key, new_key, reused, "new")
    for split, evaluated in evaluations.items():
        get_run_logger().info(
            "%s: %s accuracy %.4f, loss %.4f on %d images",
            model,
            split,
            evaluated["accuracy"],
            evaluated["loss"],
            evaluated["rows"],
        )
    return summarize_evaluations(evaluations)
