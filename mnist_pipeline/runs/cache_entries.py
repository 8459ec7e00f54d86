"""Cache entries that belong to a trained model, so they can go once the model has.

A model (name, training key) has a Prefect record of its training under `prefect-results/`, and every evaluation
of it has a predictions file under `evaluations/` (naming the model key: `modeling.prediction_files`) and a
Prefect record of that evaluation. Once the model file is gone none of them is read again (the flow retrains when
the file is missing, which writes them anew). Entries are found from what is on disk rather than from what a
pruning step just deleted, so entries left by a process killed mid-prune, by a model deleted by hand, or recorded
before evaluations named their model (keys that can never match again) go on the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.modeling.prediction_files import read_model_key

log = logging.getLogger(__name__)

TRAIN_PREFIX = "train-"
EVALUATE_PREFIX = "evaluate-"


def train_record_name(model: str, key: str) -> str:
    """Prefect cache key (and result file name) of a model's training."""
    return f"{TRAIN_PREFIX}{model}-{key}"


def evaluate_record_name(model: str, eval_key: str) -> str:
    """Prefect cache key (and result file name) of one evaluation of a model."""
    return f"{EVALUATE_PREFIX}{model}-{eval_key}"


def remove_orphaned_entries(layout: DataLayout, is_live: Callable[[str, str], bool]) -> list[Path]:
    """Delete training records and evaluations (with their records) of models for which `is_live(model, key)` is
    false, and evaluation records whose predictions file is gone; returns what went.

    Prefect writes a record only after its task returned, so a record's model file (training) or predictions file
    (evaluation) is already on disk when the record appears: a record without one is never in the making.
    """
    results = layout.prefect_results
    doomed = []
    for predictions in sorted(layout.evaluations.glob("*/*.parquet")):
        try:
            model, key = predictions.parent.name, read_model_key(predictions)
        except (OSError, pa.ArrowException) as exc:  # unreadable now: left for a later sweep to judge
            log.warning("%s: not pruned, its model key could not be read: %s", predictions, exc)
            continue
        if key is None or not is_live(model, key):
            doomed += [predictions, results / evaluate_record_name(model, predictions.stem)]
    for record in sorted(results.glob(f"{TRAIN_PREFIX}*")):
        model, _, key = record.name.removeprefix(TRAIN_PREFIX).rpartition("-")
        if not is_live(model, key):
            doomed.append(record)
    for record in sorted(results.glob(f"{EVALUATE_PREFIX}*")):
        model, _, eval_key = record.name.removeprefix(EVALUATE_PREFIX).rpartition("-")
        if not layout.evaluation_file(model, eval_key).is_file():
            doomed.append(record)
    removed = []
    for path in dict.fromkeys(doomed):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
        log.info("removed %s (its model is gone)", path)
    return removed
