"""Prefect task: train one model and save it; cached on the training key (see mnist_pipeline.runs.cache_keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.errors import PipelineError
from tasks.guard import guarded


def key_from_parameters(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the precomputed training key passed in by the flow."""
    return f"train-{parameters['model']}-{parameters['key']}"


def model_path(data_dir: Path, model: str, key: str) -> Path:
    return DataLayout(Path(data_dir)).model_file(model, key)


def resume_path(data_dir: Path, model: str, key: str) -> Path:
    """Training state saved at each epoch end, so a killed run resumes; removed once the model is saved."""
    return DataLayout(Path(data_dir)).models / model / f"{key}.resume.npz"


@task(name="train", cache_key_fn=key_from_parameters, persist_result=True, result_serializer="json")
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
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """Train `model` on the published train split; returns paths and history, never arrays."""
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.profiles import TrainConfig
    from mnist_pipeline.modeling.resume import remove_state
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    logger = get_run_logger()
    configure_tensorflow(tf_threads, deterministic=True)
    config = TrainConfig(**train_config)
    train = read_split(DataLayout(Path(data_dir)).pin(fingerprint).split_file("train")).head(train_limit)
    if tuple(train.images.shape[1:]) != tuple(image_shape):
        raise PipelineError(
            f"image_shape: expected training images of {image_shape[0]}x{image_shape[1]} (the models' input), "
            f"found {train.images.shape[1]}x{train.images.shape[2]}"
        )
    progress_key = f"training-{model.replace('_', '-')}"
    progress_id = create_progress_artifact(0.0, key=progress_key, description=f"{model}: starting")

    def report_epoch(report: Any) -> None:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in report.metrics.items())
        logger.info("%s epoch %d/%d: %s (%.1f s)", model, report.epoch, report.epochs, shown, report.seconds)
        update_progress_artifact(
            progress_id, 100.0 * report.epoch / report.epochs, description=f"{model}: epoch {report.epoch}"
        )

    logger.info("training %s on %d images: %s", model, train.rows, config.to_dict())
    state = resume_path(Path(data_dir), model, key)
    result = train_model(model, config, train, seed=seed, on_epoch=report_epoch, checkpoint=state)
    path = model_path(Path(data_dir), model, key)
    summary = {
        "model": model,
        "key": key,
        # Relative to the data dir: the cached result stays valid when the data dir moves.
        "model_path": str(path.relative_to(data_dir)),
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
    save_model(result.model, path, sidecar={**summary, **provenance})
    remove_state(state)
    update_progress_artifact(progress_id, 100.0, description=f"{model}: done in {result.seconds:.1f} s")
    return summary
