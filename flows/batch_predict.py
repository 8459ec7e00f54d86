"""The `batch-predict` flow: score a folder of images or a Parquet split with the current champion."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL
from mnist_pipeline.predict.batch import BatchSummary, build_batch_config
from mnist_pipeline.predict.model_choice import choose_model
from mnist_pipeline.runs.names import check_run_name, compose_run_name
from tasks.guard import guarded
from tasks.predict import score_task


def generate_batch_run_name() -> str:
    """`predict-...` (see `compose_run_name`)."""
    return compose_run_name("predict", str(flow_run.id), datetime.now(UTC), 8)


@flow(name="batch-predict", flow_run_name=generate_batch_run_name)
@guarded
def batch_predict(
    input: str,
    model: str = DEFAULT_PREDICT_MODEL,
    data_dir: str = str(defaults.DATA_DIR),
    output_dir: str = str(defaults.PREDICTIONS_DIR),
    target_error: float = defaults.TARGET_ERROR,
    answer_all: bool = False,
) -> BatchSummary:
    """Write `<output_dir>/<run name>/predictions.parquet` and a `batch-predictions` markdown artifact; inputs under
    the threshold for `target_error` are marked unsure (none with `answer_all`)."""
    config = build_batch_config(
        input=input,
        model=model,
        data_dir=data_dir,
        output_dir=output_dir,
        target_error=target_error,
        answer_all=answer_all,
    )
    choice = choose_model(config.model, DataLayout(config.data_dir))
    run_name = check_run_name(str(flow_run.name))
    output = config.output_dir / run_name / "predictions.parquet"
    return score_task(choice, config, str(output), f"run {run_name}")
