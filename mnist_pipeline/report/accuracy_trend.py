"""The accuracy trend over the last runs, for the Prefect UI: "is retraining helping?" as a picture and a table.

Built from the runs' metrics.json files in reports/runs/ (the same history the HTML report shows), with the
runs whose model became the champion marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mnist_pipeline.report import charts
from mnist_pipeline.report.artifact_pictures import markdown_image
from mnist_pipeline.report.view import assign_colors

TREND_RUNS = 12


@dataclass(frozen=True)
class TrendRow:
    """One run: each model's accuracy (None where the run did not train it) and whether it was promoted."""

    name: str
    test_rows: int | None
    accuracies: dict[str, float | None]
    promoted: dict[str, bool]


def read_accuracy(model: Any) -> float | None:
    """A model's test accuracy from an earlier run's metrics.json; None when absent or not a number."""
    value = model.get("test_accuracy") if isinstance(model, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_promoted(run: dict[str, Any], name: str) -> bool:
    """Whether the run's `name` model became the champion, from its metrics.json `champion` decisions."""
    decisions = run.get("champion")
    decision = decisions.get(name) if isinstance(decisions, dict) else None
    return isinstance(decision, dict) and decision.get("promoted") is True


def build_trend(history: Sequence[dict[str, Any]], metrics: dict[str, Any], limit: int = TREND_RUNS) -> list[TrendRow]:
    """The last `limit` runs, oldest first, ending with this one; `history` is oldest first without this run."""
    runs = [*history, metrics][-limit:]
    names = list(metrics["models"])
    for run in runs:
        names += [name for name in run.get("models", {}) if name not in names]
    rows = []
    for run in runs:
        models = run.get("models", {})
        rows.append(
            TrendRow(
                name=str(run["run"]["name"]),
                test_rows=(run.get("data") or {}).get("test_rows"),
                accuracies={name: read_accuracy(models.get(name)) for name in names},
                promoted={name: read_promoted(run, name) for name in names},
            )
        )
    return rows


def escape_cell(text: str) -> str:
    """Text from metrics files inside a markdown table: no column breaks, no raw HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def format_cell(accuracy: float | None, promoted: bool) -> str:
    if accuracy is None:
        return "-"
    return f"{100 * accuracy:.2f} %" + (" **★**" if promoted else "")


def render_trend_markdown(rows: Sequence[TrendRow]) -> str:
    """Chart (promotions ringed) and table (promotions starred) of each model's test accuracy, oldest run first."""
    names = list(rows[-1].accuracies)
    colors = assign_colors(names)
    chart = charts.plot_history(
        [row.name for row in rows],
        {name: [row.accuracies[name] for row in rows] for name in names},
        colors,
        marks={name: [row.promoted[name] for row in rows] for name in names},
    )
    lines = [
        f"# Test accuracy over the last {len(rows)} runs",
        "",
        "Ringed points and ★: the run's model became the champion. Newest run first in the table; compare runs on "
        "the same test images only.",
        "",
        markdown_image("accuracy trend", chart),
        "",
        "| run | test images | " + " | ".join(escape_cell(name) for name in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for row in reversed(rows):
        cells = [format_cell(row.accuracies[name], row.promoted[name]) for name in names]
        test_rows = "-" if row.test_rows is None else escape_cell(str(row.test_rows))
        lines.append(f"| {escape_cell(row.name)} | {test_rows} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
