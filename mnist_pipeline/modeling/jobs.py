"""One planned training job, done: train the model on the pinned train split, save it, say what happened.

What the `train` task returns (and Prefect caches as JSON) is the summary built here: paths and history, never
arrays. The model is saved atomically before its resume state is removed, so a kill at any point either resumes
or finds the finished model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.model_files import save_model
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.resume import remove_state
from mnist_pipeline.modeling.training import EpochReport, train_model


def run_training_job(
    layout: DataLayout,
    model: str,
    key: str,
    config: TrainConfig,
    seed: int,
    train_limit: int | None,
    image_shape: tuple[int, int],
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> dict[str, Any]:
    """Train `model` on the first `train_limit` rows of the (pinned) layout's train split; save it under its key."""
    train = read_split(layout.split_file("train")).head(train_limit)
    if tuple(train.images.shape[1:]) != tuple(image_shape):
        raise PipelineError(
            f"image_shape: expected training images of {image_shape[0]}x{image_shape[1]} (the models' input), "
            f"found {train.images.shape[1]}x{train.images.shape[2]}"
        )
    state = layout.resume_file(model, key)
    result = train_model(model, config, train, seed=seed, on_epoch=on_epoch, checkpoint=state)
    path = layout.model_file(model, key)
    save_model(result.model, path)
    remove_state(state)
    return {
        "model": model,
        "key": key,
        # Relative to the data dir: the cached result stays valid when the data dir moves.
        "model_path": str(path.relative_to(layout.root)),
        "resumed_from_epoch": result.resumed_from_epoch,
        "train_config": config.to_dict(),
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
