"""What a trained model leaves in the cache besides its `.keras` file, so pruning the model can take it along.

A model (name, training key) has a Prefect record of its training under `prefect-results/`, and every evaluation
of it has a predictions file under `evaluations/` and a Prefect record of the evaluation. Once the model file is
pruned, none of these is read again (the flow retrains when the file is gone, which writes them anew), so they go
with it. An evaluation's Parquet file names the model key it scored in its schema metadata, because its own key
(a hash that includes the model key) cannot be traced back to the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout

log = logging.getLogger(__name__)

MODEL_KEY_METADATA = b"mnist_pipeline.model_key"


def train_record_name(model: str, key: str) -> str:
    """Prefect cache key (and result file name) of a model's training."""
    return f"train-{model}-{key}"


def evaluate_record_name(model: str, eval_key: str) -> str:
    """Prefect cache key (and result file name) of one evaluation of a model."""
    return f"evaluate-{model}-{eval_key}"


def tag_with_model_key(table: pa.Table, model_key: str) -> pa.Table:
    """The predictions table with the scored model's key in its schema metadata (pandas' metadata kept)."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), MODEL_KEY_METADATA: model_key.encode()})


def read_model_key(predictions: Path) -> str | None:
    """The model key a predictions file names; None for files written before it was recorded, or unreadable."""
    try:
        metadata = pq.read_schema(predictions).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    raw = metadata.get(MODEL_KEY_METADATA)
    return raw.decode() if raw else None


def remove_cache_entries(layout: DataLayout, model: str, key: str) -> list[Path]:
    """Delete a pruned model's training record, its evaluations and their records; returns what went.

    Evaluations written before they named their model key are left alone: which model they scored is unknown.
    """
    doomed = [layout.prefect_results / train_record_name(model, key)]
    folder = layout.evaluations / model
    for predictions in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        if read_model_key(predictions) == key:
            doomed += [predictions, layout.prefect_results / evaluate_record_name(model, predictions.stem)]
    removed = []
    for path in doomed:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
        log.info("removed %s (its model %s/%s was pruned)", path, model, key)
    return removed
