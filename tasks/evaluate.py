"""Prefect task: evaluate one saved model on the test split and keep its predictions for the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task

from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.store import read_split
from tasks.guard import guarded


@task(name="evaluate")
@guarded
def evaluate_task(
    trained: dict[str, Any], data_dir: str, fingerprint: str, test_limit: int | None, predictions_path: str
) -> dict[str, Any]:
    """Accuracy, loss, per-class metrics and confusion matrix on the (limited) test split."""
    from mnist_pipeline.evaluation import evaluate_model
    from mnist_pipeline.model_files import load_model

    test = read_split(DataLayout(Path(data_dir)).pin(fingerprint).split_file("test")).head(test_limit)
    evaluation = evaluate_model(load_model(Path(trained["model_path"])), test)
    with atomic_path(Path(predictions_path)) as tmp:
        pq.write_table(pa.Table.from_pandas(evaluation.predictions, preserve_index=False), tmp)
    get_run_logger().info(
        "%s: test accuracy %.4f, loss %.4f on %d images",
        trained["model"],
        evaluation.accuracy,
        evaluation.loss,
        test.rows,
    )
    return {
        "test_accuracy": float(evaluation.accuracy),
        "test_loss": float(evaluation.loss),
        "test_rows": test.rows,
        "confusion_matrix": evaluation.confusion.tolist(),
        "per_class": evaluation.per_class,
        "predictions_path": predictions_path,
    }
