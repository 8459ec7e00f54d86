"""Prefect task: write the HTML report and publish the run's artifacts in the Prefect UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.report import select_mistakes, write_report
from mnist_pipeline.report.artifact_content import (
    build_metrics_rows,
    render_accuracy_markdown,
    render_model_markdown,
    render_report_location,
    render_summary_markdown,
    render_trend_markdown,
)
from mnist_pipeline.report.charts import cache_charts_in, draw_model_charts, prune_chart_cache
from mnist_pipeline.report.publish import load_history
from mnist_pipeline.report.view import assign_colors
from mnist_pipeline.runs.metrics import ModelOutcome
from mnist_pipeline.web.links import find_report_url, resolve_base_url
from tasks.guard import guarded

GALLERY_SIZE = 24
CHART_CACHE = ".charts"  # per-model charts by their inputs: a re-run with unchanged models draws none again
SUMMARY_KEY, TABLE_KEY, REPORT_KEY = "mnist-summary", "mnist-model-metrics", "mnist-report"
ACCURACY_KEY, TREND_KEY, MODEL_KEY_PREFIX = "mnist-accuracy", "mnist-accuracy-trend", "mnist-model-"


def model_artifact_key(name: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return MODEL_KEY_PREFIX + name.lower().replace("_", "-")


def publish_pictures(metrics: dict[str, Any], mistakes: dict[str, list[Any]], reports_dir: Path) -> None:
    """Accuracy chart, one page of pictures per model, and the accuracy trend, as markdown artifacts."""
    create_markdown_artifact(
        render_accuracy_markdown(metrics), key=ACCURACY_KEY, description="Accuracy vs seed study (MNIST) and champion"
    )
    colors = assign_colors(list(metrics["models"]))
    for name, model in metrics["models"].items():
        create_markdown_artifact(
            render_model_markdown(name, model, colors[name], mistakes.get(name, [])),
            key=model_artifact_key(name),
            description=f"{name}: confusion matrices, training curves, confident mistakes",
        )
    history = load_history(reports_dir, exclude=metrics["run"]["name"])
    create_markdown_artifact(
        render_trend_markdown(history, metrics), key=TREND_KEY, description="Accuracy over recent runs"
    )


@task(name="charts", task_run_name="charts-{outcome.trained.model}")
@guarded
def charts_task(outcome: ModelOutcome, color: str, layout: DataLayout, reports_dir: Path) -> None:
    """Draw one model's charts into the report's chart cache as soon as it is evaluated (the ANNs' while the CNN
    trains): the same pictures, from the same inputs, as the report and the UI artifacts show."""
    test = read_split(layout.split_file("test"))
    mistakes = select_mistakes(pd.read_parquet(outcome.predictions_path), test.images, limit=GALLERY_SIZE)
    with cache_charts_in(reports_dir / CHART_CACHE):
        matrix = np.asarray(outcome.scores.test.confusion_matrix)
        trust = (outcome.scores.test.calibration, outcome.scores.test.selective)
        draw_model_charts(matrix, outcome.trained.history, color, mistakes, trust)


@task(name="report")
@guarded
def report_task(metrics: dict[str, Any], layout: DataLayout, reports_dir: Path) -> str:
    """Render report.html + metrics.json for this run, refresh latest/index, post UI artifacts."""
    test = read_split(layout.pin(metrics["data"]["fingerprint"]).split_file("test"))
    mistakes = {
        name: select_mistakes(pd.read_parquet(model["predictions_path"]), test.images, limit=GALLERY_SIZE)
        for name, model in metrics["models"].items()
    }
    with cache_charts_in(reports_dir / CHART_CACHE):
        path = write_report(reports_dir, metrics, mistakes).resolve()
        url = find_report_url(reports_dir, path)
        create_markdown_artifact(
            render_summary_markdown(metrics, url or str(path)), key=SUMMARY_KEY, description="Run summary"
        )
        create_table_artifact(build_metrics_rows(metrics), key=TABLE_KEY, description="Per-model test metrics")
        if url:
            create_link_artifact(url, link_text=f"report {metrics['run']['name']}", key=REPORT_KEY)
        else:
            create_markdown_artifact(
                render_report_location(path, resolve_base_url()), key=REPORT_KEY, description="Where the report is"
            )
        publish_pictures(metrics, mistakes, reports_dir)
    prune_chart_cache(reports_dir / CHART_CACHE)
    get_run_logger().info("report written to %s%s", path, f" (served at {url})" if url else "")
    return str(path)
