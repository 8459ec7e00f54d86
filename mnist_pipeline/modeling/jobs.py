"""One planned job of a run, done or reused: train a model, or evaluate one, and record what happened.

The content-addressed files are the only cache. A model is `models/<name>/<training key>.keras` with its summary
`<key>.json` beside it (epochs, history, timings: what the run reports); an evaluation is
`evaluations/<name>/<evaluation key>.parquet` (its predictions) with its scores in `<key>.json`. A job whose files
are there is reused and marked used (`files.usage`), without importing TensorFlow; otherwise it runs and writes
them, each atomically and the summary last. A kill at any point either resumes from the training state or finds
the finished model. Summaries hold no paths, so a moved data dir keeps its cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.atomic import atomic_path, write_json_atomic
from mnist_pipeline.files.usage import mark_used, reuse_summary
from mnist_pipeline.modeling.model_health import find_model_damage
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.quiet_start import start_tensorflow

if TYPE_CHECKING:
    from mnist_pipeline.modeling.training import EpochReport

log = logging.getLogger(__name__)


def run_training_job(
    layout: DataLayout,
    model: str,
    key: str,
    config: TrainConfig,
    seed: int,
    train_limit: int | None,
    image_shape: tuple[int, int],
    tf_threads: int | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    warm_start: str | None = None,
) -> dict[str, Any]:
    """The saved model of `key` when it is there, else `model` trained on the first `train_limit` rows of the
    (pinned) layout's train split, with TensorFlow on `tf_threads`, and saved under its key; `reused` says which.
    `warm_start` (a model key, part of `key`) fine-tunes that saved model instead of training a new one."""
    path = layout.model_file(model, key)
    summary_file = path.with_suffix(".json")
    summary = reuse_summary(layout.gc_lock, summary_file, path)
    damage = find_model_damage(path) if summary is not None else None
    if damage is not None:
        log.warning("%s; training %s again", damage, model)
        summary = None
    reused = summary is not None
    if summary is None:
        summary = _train(layout, model, key, config, seed, train_limit, image_shape, tf_threads, on_epoch, warm_start)
        write_json_atomic(summary_file, summary)
    return {**summary, "model_path": str(path), "reused": reused}


def _train(
    layout: DataLayout,
    model: str,
    key: str,
    config: TrainConfig,
    seed: int,
    train_limit: int | None,
    image_shape: tuple[int, int],
    tf_threads: int | None,
    on_epoch: Callable[[EpochReport], None] | None,
    warm_start: str | None,
) -> dict[str, Any]:
    # Imported here: a reused model needs no TensorFlow.
    start_tensorflow()
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.resume import remove_state
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(tf_threads, deterministic=True)

    train = read_split(layout.split_file("train")).head(train_limit)
    if tuple(train.images.shape[1:]) != tuple(image_shape):
        raise PipelineError(
            f"image_shape: expected training images of {image_shape[0]}x{image_shape[1]} (the models' input), "
            f"found {train.images.shape[1]}x{train.images.shape[2]}"
        )
    state = layout.resume_file(model, key)
    start = None if warm_start is None else layout.model_file(model, warm_start)
    # A state resumed now, and the model fine-tuned, are in use: their keys' files are no garbage.
    mark_used(layout.gc_lock, [state] if start is None else [state, start])
    result = train_model(model, config, train, seed=seed, on_epoch=on_epoch, checkpoint=state, warm_start=start)
    save_model(result.model, layout.model_file(model, key))
    remove_state(state)
    return {
        "model": model,
        "key": key,
        "resumed_from_epoch": result.resumed_from_epoch,
        "train_config": config.to_dict(),
        "warm_start": warm_start,
        "seed": seed,
        "train_rows": train.rows,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "epoch_seconds": result.epoch_seconds,
        "train_seconds": result.seconds,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "params": int(result.model.count_params()),
    }


def run_evaluation_job(
    layout: DataLayout,
    model: str,
    model_key: str,
    eval_key: str,
    model_reused: bool,
    split: str = "test",
    limit: int | None = None,
) -> dict[str, Any]:
    """The recorded evaluation of `eval_key` when it is there and scored this very model file, else the saved model
    scored on the first `limit` rows (all when None) of the (pinned) layout's `split` (`test`, or `new`: the
    accepted increments' test parts) and recorded; `evaluation_reused` says which. A model trained anew (its file
    was collected or deleted) is scored anew: a record of an earlier file under the same key need not be its score."""
    predictions = layout.evaluation_file(model, eval_key)
    summary_file = predictions.with_suffix(".json")
    summary = reuse_summary(layout.gc_lock, summary_file, predictions) if model_reused else None
    reused = summary is not None
    if summary is None:
        from mnist_pipeline.modeling.evaluation import evaluate_saved_model  # scoring loads the model

        evaluation = evaluate_saved_model(layout, model, model_key, layout.split_file(split), limit)
        with atomic_path(predictions) as tmp:
            pq.write_table(pa.Table.from_pandas(evaluation.predictions, preserve_index=False), tmp)
        summary = {
            "accuracy": float(evaluation.accuracy),
            "loss": float(evaluation.loss),
            "rows": evaluation.rows,
            "confusion_matrix": evaluation.confusion.tolist(),
            "per_class": evaluation.per_class,
        }
        write_json_atomic(summary_file, summary)
    return {**summary, "predictions_file": str(predictions), "evaluation_reused": reused}
