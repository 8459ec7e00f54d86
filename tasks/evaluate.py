"""Prefect task: evaluate one saved model on the test split and record its predictions.

Cached on the evaluation key (model key, test split content, --test-limit, evaluation code): an unchanged model
on unchanged test data is not evaluated again, and TensorFlow is not even imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.context import TaskRunContext

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.files.atomic import atomic_path
from tasks.guard import guarded


def key_from_parameters(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the precomputed evaluation key passed in by the flow."""
    return f"evaluate-{parameters['model']}-{parameters['key']}"


@task(name="evaluate", cache_key_fn=key_from_parameters, persist_result=True, result_serializer="json")
@guarded
def evaluate_task(
    trained: dict[str, Any], model: str, key: str, data_dir: str, fingerprint: str, test_limit: int | None
) -> dict[str, Any]:
    """Accuracy, loss, per-class metrics and confusion matrix on the (limited) test split.

    The predictions go to data_dir/evaluations/<model>/<key>.parquet; the result names that file relative to
    data_dir, so a moved data dir still finds it.
    """
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.model_files import load_model

    layout = DataLayout(Path(data_dir))
    test = read_split(layout.pin(fingerprint).split_file("test")).head(test_limit)
    # The training result names its model relative to the data dir (which may have moved since).
    evaluation = evaluate_model(load_model(layout.root / trained["model_path"]), test)
    predictions = layout.evaluation_file(model, key)
    with atomic_path(predictions) as tmp:
        pq.write_table(pa.Table.from_pandas(evaluation.predictions, preserve_index=False), tmp)
    get_run_logger().info(
        "%s: test accuracy %.4f, loss %.4f on %d images", model, evaluation.accuracy, evaluation.loss, test.rows
    )
    return {
        "test_accuracy": float(evaluation.accuracy),
        "test_loss": float(evaluation.loss),
        "test_rows": test.rows,
        "confusion_matrix": evaluation.confusion.tolist(),
        "per_class": evaluation.per_class,
        "predictions_file": str(predictions.relative_to(layout.root)),
    }
