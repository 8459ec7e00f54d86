"""Render the report and the run index from the Jinja2 templates in `mnist_pipeline/report/templates` (autoescaped)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from mnist_pipeline.report.charts import digit_png
from mnist_pipeline.report.mistakes import Mistake
from mnist_pipeline.report.view import build_report_context, build_run_rows
from mnist_pipeline.runs.names import is_safe_run_name

DASH = "\u2013"  # en dash: "no value"


def format_percent(fraction: float | None) -> str:
    return DASH if fraction is None else f"{100 * fraction:.2f} %"


def format_points(fraction: float | None) -> str:
    """A difference of two accuracies, in percentage points with its sign."""
    return DASH if fraction is None else f"{100 * fraction:+.2f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_count(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def format_time(iso: str | None) -> str:
    """ISO 8601 timestamps in UTC as `2025-06-01 12:03:09 UTC`; anything unparsable is shown as it is."""
    if not iso:
        return DASH
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    if moment.tzinfo is None:
        return f"{moment:%Y-%m-%d %H:%M:%S}"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def format_value(value: Any, limit: int = 160) -> str:
    """Observed values of any shape as compact text, cut to `limit` characters."""
    if value is None:
        return DASH
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def make_environment() -> Environment:
    """One autoescaping environment; undefined names fail loudly instead of rendering empty."""
    environment = Environment(
        loader=PackageLoader("mnist_pipeline.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        percent=format_percent,
        points=format_points,
        seconds=format_seconds,
        thousands=format_count,
        time=format_time,
        value=format_value,
        digit_png=digit_png,
    )
    environment.tests["safe_run_name"] = is_safe_run_name
    return environment


def render_report(metrics: dict[str, Any], mistakes: dict[str, list[Mistake]], history: list[dict[str, Any]]) -> str:
    """One self-contained HTML page for a run; `history` holds earlier runs' metrics, oldest first."""
    context = build_report_context(metrics, mistakes, history)
    return make_environment().get_template("report.html.j2").render(**context)


def sort_newest_first(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs by start time, newest first; the run name breaks ties (names carry the time too)."""
    return sorted(
        runs, key=lambda run: (str(run["run"].get("started_at") or ""), str(run["run"]["name"])), reverse=True
    )


def render_index(runs: list[dict[str, Any]]) -> str:
    """The table of all runs in reports/, newest first, each linking to its report."""
    ordered = sort_newest_first(runs)
    names, rows = build_run_rows(ordered, ordered[0])
    return make_environment().get_template("index.html.j2").render(names=names, rows=rows)
