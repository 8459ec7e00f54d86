"""One planned job of a run, done or reused: train a model, or evaluate one, and record what happened.

The content-addressed files are the only cache. A model is `models/<name>/<training key>.keras` with its summary
`<key>.json` beside it (epochs, history, timings: what the run reports); an evaluation is
`evaluations/<name>/<evaluation key>.parquet` (its predictions) with its scores in `<key>.json`; a model's
calibration is `<training key>.calibration.json`, fitted before its first evaluation. A job whose files
are there is reused and marked used (`files.usage`), without importing TensorFlow; otherwise it runs and writes
them, each atomically and the summary last. A kill at any point either resumes from the training state or finds
the finished model. Summaries hold no paths, so a moved data dir keeps its cache.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_manifest, read_split
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.atomic import atomic_path, write_json_atomic
from mnist_pipeline.files.usage import mark_used, reuse_summary
from mnist_pipeline.modeling.calibration import (
    Calibration,
    calibration_file,
    fit_calibration,
    held_out_rows,
    load_calibration,
    save_calibration,
)
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.quiet_start import start_tensorflow
from mnist_pipeline.modeling.serving import find_model_damage, open_engine

if TYPE_CHECKING:
    from mnist_pipeline.modeling.training import EpochReport

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TrainingJob:
    """Everything one model's training and evaluation depend on, planned before any work (`runs.plan`).

    `key` names the trained model, `eval_key` its evaluation on the (limited) `test` split, `new_eval_key` on the
    whole `new` split (None when the version has none); `warm_start` is the key of the model it fine-tunes."""

    model: str
    key: str
    eval_key: str
    new_eval_key: str | None
    train_config: TrainConfig
    warm_start: str | None
    seed: int
    train_limit: int | None
    test_limit: int | None
    image_shape: tuple[int, int]
    tf_threads: int | None


@dataclass(frozen=True)
class TrainedModel:
    """A job's trained model: how training went (its `<key>.json` summary), where the model is, and whether it
    was reused rather than trained by this run. `increment_rows` of its `train_rows` were accepted increments'."""

    model: str
    key: str
    train_config: dict[str, Any]
    seed: int
    train_rows: int
    epochs_run: int
    best_epoch: int
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    train_seconds: float
    started_at: str
    finished_at: str
    params: int
    model_path: str = ""
    reused: bool = False
    resumed_from_epoch: int = 0
    warm_start: str | None = None
    increment_rows: int = 0

    def summary(self) -> dict[str, Any]:
        """What `<key>.json` records: everything but where the model is found and whether it was reused."""
        return _without(dataclasses.asdict(self), "model_path", "reused")


@dataclass(frozen=True)
class SetEvaluation:
    """A model's scores on one set (`test` or `new`) and the file of its predictions."""

    accuracy: float
    loss: float
    rows: int
    confusion_matrix: list[list[int]]
    per_class: dict[str, list[float]]
    calibration: dict[str, Any]
    selective: dict[str, Any]
    predictions_file: str
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        """What the evaluation's `<key>.json` records: everything but its file and whether it was reused."""
        return _without(dataclasses.asdict(self), "predictions_file", "reused")


@dataclass(frozen=True)
class ModelScores:
    """A model's evaluations: on `test` always, on `new` when the dataset version has one."""

    test: SetEvaluation
    new: SetEvaluation | None = None

    @property
    def reused(self) -> bool:
        return self.test.reused and (self.new is None or self.new.reused)

    def by_set(self) -> dict[str, SetEvaluation]:
        return {"test": self.test} | ({"new": self.new} if self.new is not None else {})


def _without(recorded: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in recorded.items() if name not in names}


def _from_summary(kind: type[T], summary: dict[str, Any] | None, **found: Any) -> T | None:
    """The recorded result, or None when there is none or it is not of this shape (the job then runs again)."""
    if summary is None:
        return None
    try:
        return kind(**summary, **found)
    except TypeError:
        return None


def run_training_job(
    layout: DataLayout, job: TrainingJob, on_epoch: Callable[[EpochReport], None] | None = None
) -> TrainedModel:
    """The saved model of the job's key when it is there, else the model trained on the first `train_limit` rows
    of the (pinned) layout's train split and saved under its key; `reused` says which."""
    path = layout.model_file(job.model, job.key)
    summary_file = path.with_suffix(".json")
    summary = reuse_summary(layout.gc_lock, summary_file, path)
    damage = find_model_damage(path) if summary is not None else None
    if damage is not None:
        log.warning("%s; training %s again", damage, job.model)
        summary = None
    reused = _from_summary(TrainedModel, summary, model_path=str(path), reused=True)
    if reused is not None:
        return reused
    trained = _train(layout, job, on_epoch)
    write_json_atomic(summary_file, trained.summary())
    return dataclasses.replace(trained, model_path=str(path))


def _train(layout: DataLayout, job: TrainingJob, on_epoch: Callable[[EpochReport], None] | None) -> TrainedModel:
    # Imported here: a reused model needs no TensorFlow.
    start_tensorflow()
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.resume import remove_state
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(job.tf_threads, deterministic=True)

    full = read_split(layout.split_file("train"))
    train = full.head(job.train_limit)
    # A grown version's train split ends with its increments' train parts (`increments.versions`).
    grown_by = read_manifest(layout).get("increment_rows", {}).get("train", 0)
    increment_rows = max(0, train.rows - (full.rows - grown_by))
    if tuple(train.images.shape[1:]) != tuple(job.image_shape):
        raise PipelineError(
            f"image_shape: expected training images of {job.image_shape[0]}x{job.image_shape[1]} (the models' "
            f"input), found {train.images.shape[1]}x{train.images.shape[2]}"
        )
    state = layout.resume_file(job.model, job.key)
    start = None if job.warm_start is None else layout.model_file(job.model, job.warm_start)
    # A state resumed now, and the model fine-tuned, are in use: their keys' files are no garbage.
    mark_used(layout.gc_lock, [state] if start is None else [state, start])
    result = train_model(
        job.model,
        job.train_config,
        train,
        seed=job.seed,
        on_epoch=on_epoch,
        checkpoint=state,
        warm_start=start,
        increment_rows=increment_rows,
    )
    save_model(result.model, layout.model_file(job.model, job.key))
    remove_state(state)
    return TrainedModel(
        model=job.model,
        key=job.key,
        resumed_from_epoch=result.resumed_from_epoch,
        train_config=job.train_config.to_dict(),
        warm_start=job.warm_start,
        seed=job.seed,
        train_rows=train.rows,
        increment_rows=increment_rows,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        history=result.history,
        epoch_seconds=result.epoch_seconds,
        train_seconds=result.seconds,
        started_at=result.started_at,
        finished_at=result.finished_at,
        params=int(result.model.count_params()),
    )


def run_evaluation_job(
    layout: DataLayout,
    trained: TrainedModel,
    eval_key: str,
    split: str = "test",
    limit: int | None = None,
) -> SetEvaluation:
    """The recorded evaluation of `eval_key` when it is there and scored this very model file, else the saved model
    scored on the first `limit` rows (all when None) of the (pinned) layout's `split` (`test`, or `new`: the
    accepted increments' test parts) and recorded; `reused` says which. A model trained anew (its file was
    collected or deleted) is scored anew: a record of an earlier file under the same key need not be its score."""
    predictions = layout.evaluation_file(trained.model, eval_key)
    summary_file = predictions.with_suffix(".json")
    summary = reuse_summary(layout.gc_lock, summary_file, predictions) if trained.reused else None
    reused = _from_summary(SetEvaluation, summary, predictions_file=str(predictions), reused=True)
    if reused is not None:
        return reused
    from mnist_pipeline.modeling.evaluation import evaluate_saved_model  # scoring loads the model

    evaluation = evaluate_saved_model(layout, trained.model, trained.key, layout.split_file(split), limit)
    with atomic_path(predictions) as tmp:
        pq.write_table(pa.Table.from_pandas(evaluation.predictions, preserve_index=False), tmp)
    scored = SetEvaluation(
        accuracy=float(evaluation.accuracy),
        loss=float(evaluation.loss),
        rows=evaluation.rows,
        confusion_matrix=evaluation.confusion.tolist(),
        per_class=evaluation.per_class,
        calibration=evaluation.calibration,
        selective={**dataclasses.asdict(evaluation.selective), "curve": evaluation.risk_coverage},
        predictions_file=str(predictions),
    )
    write_json_atomic(summary_file, scored.summary())
    return scored


def calibrate_job(layout: DataLayout, job: TrainingJob, trained: TrainedModel) -> Calibration:
    """The model's calibration: the saved one of a reused model, else fitted on the rows of the job's train split
    that training held out (its validation split) and saved beside the model."""
    path = calibration_file(layout.model_file(job.model, job.key))
    saved = load_calibration(path) if trained.reused else None
    if saved is not None:
        return saved
    train = read_split(layout.split_file("train")).head(job.train_limit)
    rows = held_out_rows(train.rows, job.train_config.validation_fraction, job.seed)
    engine = open_engine(layout, job.model, job.key)
    calibration = fit_calibration(engine.logits(train.images[rows]), train.labels[rows])
    save_calibration(calibration, path)
    return calibration


def evaluate_job(layout: DataLayout, job: TrainingJob, trained: TrainedModel) -> ModelScores:
    """The job's model calibrated, then scored on the (limited) `test` split and, when the version has one, the
    whole `new` split."""
    calibrate_job(layout, job, trained)
    test = run_evaluation_job(layout, trained, job.eval_key, "test", job.test_limit)
    new = run_evaluation_job(layout, trained, job.new_eval_key, "new") if job.new_eval_key is not None else None
    return ModelScores(test, new)
