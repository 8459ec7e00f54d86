"""Prefect tasks: train one model, or reuse the one saved under its key; evaluate it (reused too: `modeling.jobs`)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.files.atomic import copy_file_atomic
from mnist_pipeline.modeling.jobs import TrainedModel, TrainingJob, evaluate_job, run_training_job
from mnist_pipeline.runs.metrics import ModelOutcome
from tasks.guard import guarded

if TYPE_CHECKING:
    from mnist_pipeline.modeling.training import EpochReport


@task(name="train", task_run_name="train-{job.model}")
@guarded
def train_task(job: TrainingJob, layout: DataLayout) -> TrainedModel:
    """Train the job's model (a progress artifact per epoch), unless its saved model is there."""
    logger = get_run_logger()
    model = job.model
    progress_id = create_progress_artifact(
        0.0, key=f"training-{model.replace('_', '-')}", description=f"{model}: starting"
    )

    def show_epoch(report: EpochReport) -> None:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in report.metrics.items())
        logger.info("%s epoch %d/%d: %s (%.1f s)", model, report.epoch, report.epochs, shown, report.seconds)
        update_progress_artifact(
            progress_id, 100.0 * report.epoch / report.epochs, description=f"{model}: epoch {report.epoch}"
        )

    logger.info("%s: %s", model, job.train_config.to_dict())
    # Progress goes to the API from one thread of its own, in epoch order: training never waits for the UI (these
    # calls were ~40 ms an epoch of each model's time outside its epochs, three models sharing two cores).
    updates: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"progress-{model}") as progress:

        def report_epoch(report: EpochReport) -> None:
            updates.append(progress.submit(copy_context().run, show_epoch, report))

        trained = run_training_job(layout, job, report_epoch)
    # Progress is for people watching; a failed update must not throw away the trained model.
    failed = [error for error in (update.exception() for update in updates) if error is not None]
    if failed:
        logger.warning("%s: %d progress update(s) not shown: %s", model, len(failed), failed[0])
    done = "reused the saved model" if trained.reused else f"done in {trained.train_seconds:.1f} s"
    update_progress_artifact(progress_id, 100.0, description=f"{model}: {done}")
    return trained


@task(name="evaluate", task_run_name="evaluate-{job.model}")
@guarded
def evaluate_task(trained: TrainedModel, job: TrainingJob, layout: DataLayout, run_dir: Path) -> ModelOutcome:
    """Scores on `test` (limited) and `new`; the test predictions are copied into the run's folder for its report."""
    scores = evaluate_job(layout, job, trained)
    for split, scored in scores.by_set().items():
        get_run_logger().info(
            "%s: %s accuracy %.4f, loss %.4f on %d images", job.model, split, scored.accuracy, scored.loss, scored.rows
        )
    predictions = run_dir / "predictions" / f"{job.model}.parquet"
    copy_file_atomic(Path(scores.test.predictions_file), predictions)
    return ModelOutcome(trained, scores, str(predictions))
