"""The Prefect UI artifacts' content (markdown and table rows), kept free of Prefect so it is testable. The
pictures are the report's charts, each inlined as its compact PNG copy (`charts.compact_png`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnist_pipeline.markdown import Markdown, escape_markdown, markdown_table
from mnist_pipeline.report import charts
from mnist_pipeline.report.mistakes import Mistake
from mnist_pipeline.report.view import assign_colors, build_run_rows, collect_series, read_new_accuracy
from mnist_pipeline.runs.metrics import seed_study_for

TREND_RUNS = 12


def render_validation_markdown(summary: dict[str, Any]) -> str:
    """Every check as a table row, then the failures spelled out."""
    verdict = "passed" if summary["success"] else "**FAILED: training blocked**"
    rows = [
        (
            check["split"],
            check["expectation"],
            "pass" if check["success"] else Markdown("**FAIL**"),
            str(check["observed"])[:80],
        )
        for check in summary["checks"]
    ]
    lines = [f"# Data validation {verdict}", "", *markdown_table(("split", "check", "result", "observed"), rows)]
    failures = [check["message"] for check in summary["checks"] if not check["success"]]
    if failures:
        lines += ["", "## What failed", *[f"- {escape_markdown(message)}" for message in failures]]
    return "\n".join(lines)


def build_metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model for the table artifact."""
    seed_study = seed_study_for(metrics)
    return [
        {
            "model": name,
            "test_accuracy_pct": round(100 * model["test_accuracy"], 2),
            "new_accuracy_pct": None if read_new_accuracy(model) is None else round(100 * read_new_accuracy(model), 2),
            "seed_accuracy_pct": None if seed_study.get(name) is None else round(100 * seed_study[name], 2),
            "test_loss": round(model["test_loss"], 4),
            "epochs": model["epochs_run"],
            "batch_size": model["batch_size"],
            "train_seconds": round(model["train_seconds"], 1),
            "cached": model["cached"],
        }
        for name, model in metrics["models"].items()
    ]


def describe_new_data(data: dict[str, Any]) -> str:
    """`, 120 new images from 2 increments` when the version grew, else nothing."""
    increments = len(data.get("increments") or [])
    if not increments:
        return ""
    return f", {data.get('new_rows', 0)} new images from {increments} increment{'s' if increments > 1 else ''}"


def format_fingerprint(fingerprint: str) -> Markdown:
    """A dataset fingerprint's first 12 characters, in a code span when they are hex as the pipeline writes them;
    anything else (an edited metrics.json) as escaped text, since a code span shows its text unescaped."""
    short = fingerprint[:12]
    if not short:
        return Markdown("-")
    return Markdown(f"`{short}`" if all(char in string.hexdigits for char in short) else escape_markdown(short))


def render_summary_markdown(metrics: dict[str, Any], report_path: str) -> str:
    """The run at a glance: accuracy vs the seed study, validation, where the report is (a link when served)."""
    run, data = metrics["run"], metrics["data"]
    validation = "passed" if metrics["validation"]["success"] else "FAILED"
    rows = [
        (
            row["model"],
            f"{row['test_accuracy_pct']:.2f} %",
            "-" if row["new_accuracy_pct"] is None else f"{row['new_accuracy_pct']:.2f} %",
            "-" if row["seed_accuracy_pct"] is None else f"{row['seed_accuracy_pct']:.2f} %",
            "-" if row["seed_accuracy_pct"] is None else f"{row['test_accuracy_pct'] - row['seed_accuracy_pct']:+.2f}",
            f"{row['train_seconds']:.1f}",
            "yes" if row["cached"] else "no",
        )
        for row in build_metrics_rows(metrics)
    ]
    served = report_path.startswith(("http://", "https://"))
    header = ("model", "test accuracy", "new accuracy", "seed study", "Δ (points)", "train s", "cached")
    return "\n".join(
        [
            f"# MNIST run {escape_markdown(run['name'])}",
            "",
            f"Data: {escape_markdown(data['source'])}, {data['train_rows']} train / {data['test_rows']} test images"
            f"{describe_new_data(data)}, fingerprint {format_fingerprint(data['fingerprint'])}. "
            f"Validation: {validation}.",
            "",
            *markdown_table(header, rows, align="lrrrrr"),
            "",
            f"Report: [{escape_markdown(report_path)}]({report_path})"
            if served
            else f"Report: {escape_markdown(report_path)}",
        ]
    )


def render_report_location(path: Path, server_url: str) -> str:
    """Where the report file is, in text: a `file://` link would not open from the UI's http page."""
    return "\n".join(
        [
            "# Report",
            "",
            f"The report is the file {escape_markdown(path)} (open it in a browser on this machine).",
            "",
            f"No report server answered at {escape_markdown(server_url)} with this report, so there is no link. Start "
            "the Prefect server with `make server` (it serves the reports too) and later runs link to the report here.",
        ]
    )


def describe_scores(challenger: Any, champion: Any) -> str:
    """`challenger vs champion (change)` on one set, in percent and points; `-` when the set was not scored."""
    if not isinstance(challenger, int | float):
        return "-"
    if not isinstance(champion, int | float):
        return f"{100 * challenger:.2f} %"
    return f"{100 * challenger:.2f} % vs {100 * champion:.2f} % ({100 * (challenger - champion):+.2f})"


def render_promotion_markdown(run_name: str, decisions: dict[str, dict[str, Any]]) -> str:
    """One row per model: promoted or not, against which champion, the scores on both sets, and why."""
    rows = []
    for name, decision in decisions.items():
        if not decision.get("considered", True):
            outcome, versus = "not considered (limited run)", "-"
        else:
            outcome = Markdown("**yes**") if decision["promoted"] else "no"
            versus = f"run {decision['champion_run']}" if decision.get("champion_run") else "no champion"
        new = describe_scores(decision.get("challenger_new_accuracy"), decision.get("champion_new_accuracy"))
        test = describe_scores(decision.get("challenger_accuracy"), decision.get("champion_accuracy"))
        rows.append((name, outcome, versus, new, test, decision["reason"]))
    header = (
        "model",
        "promoted",
        "compared with",
        "new: challenger vs champion",
        "test: challenger vs champion",
        "why",
    )
    return "\n".join(
        [
            f"# Champion/challenger, run {escape_markdown(run_name)}",
            "",
            "The challenger must win on `new` (the accepted increments' test parts), or on `test` while `new` is "
            "empty, lose at most the allowed drop on `test`, and drop no digit's recall too far on either set.",
            "",
            *markdown_table(header, rows),
        ]
    )


def markdown_image(alt: str, data_uri: str, cached: bool = False) -> str:
    """An inline image; alt text is limited to characters that cannot end the markdown construct."""
    safe_alt = "".join(char for char in alt if char.isalnum() or char in " -_.,%()")
    return f"![{safe_alt}]({charts.compact_png(data_uri, cached=cached)})"


def render_accuracy_markdown(metrics: dict[str, Any]) -> str:
    """This run against the seed study and the champions it faced, as the report's accuracy chart."""
    names = list(metrics["models"])
    seed_study = seed_study_for(metrics)
    decisions = metrics.get("champion") or {}
    chart = charts.plot_accuracy(
        names,
        [metrics["models"][name]["test_accuracy"] for name in names],
        [seed_study.get(name) for name in names],
        list(assign_colors(names).values()),
        champions=[(decisions.get(name) or {}).get("champion_accuracy") for name in names],
    )
    test_rows = metrics["data"]["test_rows"]
    beside = "the seed study's published numbers and " if seed_study else ""
    return "\n".join(
        [
            f"# Test accuracy, run {escape_markdown(metrics['run']['name'])}",
            "",
            f"This run on {test_rows} test images, beside {beside}the champion each "
            "model faced (re-scored on this run's test images when its data differed).",
            "",
            markdown_image(f"accuracy: this run, {'seed study, ' if seed_study else ''}champion", chart),
        ]
    )


def render_model_markdown(name: str, model: dict[str, Any], color: str, mistakes: Sequence[Mistake]) -> str:
    """One model's pictures: confusion matrix (counts and row-normalised), training curves, confident mistakes."""
    matrix = np.asarray(model["confusion_matrix"], dtype=np.int64)
    total = int(matrix.sum())
    errors = total - int(np.trace(matrix))
    sections = (
        ("## Confusion matrix (rows = true digit)", "confusion matrix, counts", charts.plot_confusion(matrix, False)),
        (
            "Row-normalised: % of each true digit that went to each prediction (diagonal greyed out).",
            "confusion matrix, row-normalised",
            charts.plot_confusion(matrix, True),
        ),
        ("## Training curves", "training curves", charts.plot_training(model.get("history") or {}, color)),
        (
            "## Reliability and risk-coverage (test)",
            "reliability diagram and risk-coverage curve",
            charts.plot_trust(model.get("calibration") or {}, model.get("selective") or {}, color),
        ),
        (
            "## Most confident mistakes (true → predicted, confidence)",
            "most confident mistakes",
            charts.plot_mistakes(mistakes),
        ),
    )
    accuracy = f"{100 * model['test_accuracy']:.2f} % test accuracy, {errors} of {total} wrong"
    lines = [f"# {escape_markdown(name)}: {accuracy}"]
    for heading, alt, picture in sections:
        if picture is not None:  # no curves without a recorded history, no strip without mistakes
            lines += ["", heading, "", markdown_image(f"{name} {alt}", picture, cached=True)]
    return "\n".join(lines)


def format_trend_cell(accuracy: float | None, promoted: bool = False) -> Markdown:
    return Markdown("-" if accuracy is None else f"{100 * accuracy:.2f} %" + (" **★**" if promoted else ""))


def render_trend_markdown(history: Sequence[dict[str, Any]], metrics: dict[str, Any], limit: int = TREND_RUNS) -> str:
    """Is retraining helping? Each model's accuracy on `test` and, where runs had one, on `new`, over the last
    `limit` runs, this one last (`history` is oldest first without it), with the dataset version each run trained
    on and its new images: a chart with promotions ringed and a table with them starred, newest first."""
    names, rows = build_run_rows([*history, metrics][-limit:], metrics)
    new_series = collect_series(names, rows, "new_accuracies")
    has_new = any(accuracy is not None for values in new_series.values() for accuracy in values)
    chart = charts.plot_history(
        [row["name"] for row in rows],
        collect_series(names, rows, "accuracies"),
        assign_colors(names),
        marks=collect_series(names, rows, "promoted"),
        new_series=new_series,
    )
    table = []
    for row in reversed(rows):
        cells = []
        for accuracy, new_accuracy, promoted in zip(
            row["accuracies"], row["new_accuracies"], row["promoted"], strict=True
        ):
            cells.append(format_trend_cell(accuracy, promoted))
            if has_new:
                cells.append(format_trend_cell(new_accuracy))
        test_rows = "-" if row["test_rows"] is None else row["test_rows"]
        new_images = "-" if row["new_images"] is None else row["new_images"]
        table.append((row["name"], format_fingerprint(row["fingerprint"]), new_images, test_rows, *cells))
    columns = [f"{name} {split}" for name in names for split in ("test", "new")] if has_new else names
    header = ("run", "data", "new images", "test images", *columns)
    return "\n".join(
        [
            f"# Accuracy over the last {len(rows)} runs",
            "",
            "Ringed points and ★: the run's model became the champion. `data`: the dataset version the run trained on; "
            "`new images`: the accepted increments' images it held (trained on, and its `new` set)"
            + (" (the `new` columns and dashed lines)" if has_new else "")
            + ". Newest run first in the table; compare runs on the same test images only.",
            "",
            markdown_image("accuracy trend", chart),
            "",
            *markdown_table(header, table, align="lllr" + "r" * len(columns)),
        ]
    )
