"""Prefect task: draw one model's charts into the report's chart cache as soon as that model is evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.report import select_mistakes
from mnist_pipeline.report.charts import cache_charts_in, draw_model_charts
from tasks.guard import guarded
from tasks.report import CHART_CACHE, GALLERY_SIZE


@task(name="charts", task_run_name="charts-{model}")
@guarded
def charts_task(
    trained: dict[str, Any],
    evaluated: dict[str, Any],
    model: str,
    color: str,
    data_dir: str,
    fingerprint: str,
    reports_dir: str,
) -> None:
    """The same pictures, from the same inputs, as the report and the UI artifacts show for `model`."""
    layout = DataLayout(Path(data_dir)).pin(fingerprint)
    test = read_split(layout.split_file("test"))
    predictions = pd.read_parquet(evaluated["predictions_file"])
    mistakes = select_mistakes(predictions, test.images, limit=GALLERY_SIZE)
    with cache_charts_in(Path(reports_dir) / CHART_CACHE):
        draw_model_charts(np.asarray(evaluated["confusion_matrix"]), trained["history"], color, mistakes)
