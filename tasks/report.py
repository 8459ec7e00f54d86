"""Prefect task: write the HTML report and publish the run's artifacts in the Prefect UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from mnist_pipeline.artifact_content import build_metrics_rows, render_summary_markdown
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.store import read_split
from tasks.guard import guarded

GALLERY_SIZE = 24
SUMMARY_KEY, TABLE_KEY, REPORT_KEY = "mnist-summary", "mnist-model-metrics", "mnist-report"


@task(name="report")
@guarded
def report_task(metrics: dict[str, Any], data_dir: str, reports_dir: str) -> str:
    """Render report.html + metrics.json for this run, refresh latest/index, post UI artifacts."""
    from mnist_pipeline.report import select_mistakes, write_report

    test = read_split(DataLayout(Path(data_dir)).pin(metrics["data"]["fingerprint"]).split_file("test"))
    mistakes = {
        name: select_mistakes(pd.read_parquet(model["predictions_path"]), test.images, limit=GALLERY_SIZE)
        for name, model in metrics["models"].items()
    }
    path = write_report(Path(reports_dir), metrics, mistakes).resolve()
    create_markdown_artifact(render_summary_markdown(metrics, str(path)), key=SUMMARY_KEY, description="Run summary")
    create_table_artifact(build_metrics_rows(metrics), key=TABLE_KEY, description="Per-model test metrics")
    create_link_artifact(path.as_uri(), link_text=f"report {metrics['run']['name']}", key=REPORT_KEY)
    get_run_logger().info("report written to %s", path)
    return str(path)
