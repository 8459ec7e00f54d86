"""Write a run's report into reports/: runs/<name>/{report.html,metrics.json}, latest.html and index.html.

All is rendered before anything is written atomically, under a lock on the reports folder, so a failure leaves
the previous reports as they were and each index lists every run finished before it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mnist_pipeline.files.atomic import hold_lock, remove_stale_temps, write_json_atomic, write_text_atomic
from mnist_pipeline.report.mistakes import Mistake
from mnist_pipeline.report.render import render_index, render_report, sort_newest_first
from mnist_pipeline.runs.names import check_run_name

logger = logging.getLogger(__name__)


def read_run_metrics(path: Path) -> dict[str, Any] | None:
    """An earlier run's metrics.json, or None (with a warning) when it cannot be used."""
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("skipping %s in the run history: %s", path, exc)
        return None
    if not (
        isinstance(metrics, dict)
        and isinstance(metrics.get("run"), dict)
        and isinstance(metrics["run"].get("name"), str)
        and isinstance(metrics.get("models"), dict)
    ):
        logger.warning("skipping %s in the run history: expected run.name and models, found another shape", path)
        return None
    return metrics


def load_history(reports_dir: Path, exclude: str) -> list[dict[str, Any]]:
    """Metrics of the runs already in reports/runs/, oldest first, without the run named `exclude`."""
    runs = []
    for path in sorted((reports_dir / "runs").glob("*/metrics.json")):
        if path.parent.name == exclude:
            continue
        metrics = read_run_metrics(path)
        if metrics is not None:
            runs.append(metrics)
    return sort_newest_first(runs)[::-1]


def to_json(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"metrics: cannot store {type(value).__name__} as JSON")


def write_report(reports_dir: Path, metrics: dict[str, Any], mistakes: dict[str, list[Mistake]]) -> Path:
    """Render and publish this run's report; returns the path of runs/<name>/report.html."""
    name = check_run_name(metrics["run"]["name"])
    with hold_lock(reports_dir / ".reports.lock"):
        for stale in remove_stale_temps(reports_dir):
            logger.info("removed %s, left behind by an interrupted process", stale)
        history = load_history(reports_dir, exclude=name)
        report = render_report(metrics, mistakes, history)
        index = render_index([*history, metrics])
        run_dir = reports_dir / "runs" / name
        report_path = run_dir / "report.html"
        write_json_atomic(run_dir / "metrics.json", metrics, default=to_json)
        write_text_atomic(report_path, report)
        write_text_atomic(reports_dir / "latest.html", report)
        write_text_atomic(reports_dir / "index.html", index)
    return report_path
