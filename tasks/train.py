"""Prefect task: train one model and save it, or reuse the model saved under its training key (`modeling.jobs`)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from mnist_pipeline.data.layout import DataLayout
from tasks.guard import guarded


@task(name="train")
@guarded
def train_task(
    model: str,
    key: str,
    data_dir: str,
    fingerprint: str,
    train_config: dict[str, Any],
    seed: int,
    train_limit: int | None,
    tf_threads: int | None,
    image_shape: tuple[int, int],
    warm_start: str | None = None,
) -> dict[str, Any]:
    """Train `model` on the pinned train split (a progress artifact per epoch), unless its saved model is there;
    returns the job summary. `warm_start`: the key of the saved model to fine-tune (None: train a new one)."""
    from mnist_pipeline.modeling.jobs import run_training_job
    from mnist_pipeline.modeling.profiles import TrainConfig

    logger = get_run_logger()
    config = TrainConfig(**train_config)
    progress_id = create_progress_artifact(
        0.0, key=f"training-{model.replace('_', '-')}", description=f"{model}: starting"
    )

    def show_epoch(report: Any) -> None:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in report.metrics.items())
        logger.info("%s epoch %d/%d: %s (%.1f s)", model, report.epoch, report.epochs, shown, report.seconds)
        update_progress_artifact(
            progress_id, 100.0 * report.epoch / report.epochs, description=f"{model}: epoch {report.epoch}"
        )

    logger.info("%s: %s", model, config.to_dict())
    layout = DataLayout(Path(data_dir)).pin(fingerprint)
    # Progress goes to the API from one thread of its own, in epoch order: training never waits for the UI (these
    # calls were ~40 ms an epoch of each model's time outside its epochs, three models sharing two cores).
    updates: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"progress-{model}") as progress:

        def report_epoch(report: Any) -> None:
            updates.append(progress.submit(copy_context().run, show_epoch, report))

        summary = run_training_job(
            layout, model, key, config, seed, train_limit, tuple(image_shape), tf_threads, report_epoch, warm_start
        )
    # Progress is for people watching; a failed update must not throw away the trained model.
    failed = [error for error in (update.exception() for update in updates) if error is not None]
    if failed:
        logger.warning("%s: %d progress update(s) not shown: %s", model, len(failed), failed[0])
    done = "reused the saved model" if summary["reused"] else f"done in {summary['train_seconds']:.1f} s"
    update_progress_artifact(progress_id, 100.0, description=f"{model}: {done}")
    return summary
