"""Text for the Prefect UI artifacts (markdown and table rows), kept free of Prefect so it is testable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_pipeline.runs.metrics import seed_study_for


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_validation_markdown(summary: dict[str, Any]) -> str:
    """Every check as a table row, then the failures spelled out."""
    verdict = "passed" if summary["success"] else "**FAILED: training blocked**"
    lines = [f"# Data validation {verdict}", "", "| split | check | result | observed |", "|---|---|---|---|"]
    for check in summary["checks"]:
        mark = "pass" if check["success"] else "**FAIL**"
        lines.append(
            f"| {_cell(check['split'])} | {_cell(check['expectation'])} | {mark} | {_cell(check['observed'])[:80]} |"
        )
    failures = [check["message"] for check in summary["checks"] if not check["success"]]
    if failures:
        lines += ["", "## What failed", *[f"- {_cell(message)}" for message in failures]]
    return "\n".join(lines)


def build_metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model for the table artifact."""
    rows = []
    seed_study = seed_study_for(metrics)
    for name, model in metrics["models"].items():
        seed = seed_study.get(name)
        rows.append(
            {
                "model": name,
                "test_accuracy_pct": round(100 * model["test_accuracy"], 2),
                "seed_accuracy_pct": round(100 * seed, 2) if seed is not None else None,
                "test_loss": round(model["test_loss"], 4),
                "epochs": model["epochs_run"],
                "batch_size": model["batch_size"],
                "train_seconds": round(model["train_seconds"], 1),
                "cached": model["cached"],
            }
        )
    return rows


def render_summary_markdown(metrics: dict[str, Any], report_path: str) -> str:
    """The run at a glance: accuracy vs the seed study, validation, where the report is (a link when served)."""
    run, data = metrics["run"], metrics["data"]
    validation = "passed" if metrics["validation"]["success"] else "FAILED"
    lines = [
        f"# MNIST run {_cell(run['name'])}",
        "",
        f"Data: {_cell(data['source'])}, {data['train_rows']} train / {data['test_rows']} test images, "
        f"fingerprint `{data['fingerprint'][:12]}`. Validation: {validation}.",
        "",
        "| model | test accuracy | seed study | Δ (points) | train s | cached |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in build_metrics_rows(metrics):
        seed = row["seed_accuracy_pct"]
        delta = f"{row['test_accuracy_pct'] - seed:+.2f}" if seed is not None else "-"
        seed_text = f"{seed:.2f} %" if seed is not None else "-"
        lines.append(
            f"| {_cell(row['model'])} | {row['test_accuracy_pct']:.2f} % | {seed_text} | {delta} | "
            f"{row['train_seconds']:.1f} | {'yes' if row['cached'] else 'no'} |"
        )
    served = report_path.startswith(("http://", "https://"))
    lines += ["", f"Report: [{_cell(report_path)}]({report_path})" if served else f"Report: `{_cell(report_path)}`"]
    return "\n".join(lines)


def render_report_location(path: Path, server_url: str) -> str:
    """Where the report file is, in text: a `file://` link would not open from the UI's http page."""
    return "\n".join(
        [
            "# Report",
            "",
            f"The report is the file `{_cell(path)}`: open it in a browser on this machine.",
            "",
            f"No report server answered at {_cell(server_url)} with this report, so there is no link. Start the "
            "Prefect server with `make server` (it serves the reports too) and later runs link to the report here.",
        ]
    )


def render_promotion_markdown(run_name: str, decisions: dict[str, dict[str, Any]]) -> str:
    """One row per model: promoted or not, against which champion, and why."""
    lines = [
        f"# Champion/challenger, run {_cell(run_name)}",
        "",
        "| model | promoted | compared with | why |",
        "|---|---|---|---|",
    ]
    for name, decision in decisions.items():
        if not decision.get("considered", True):
            outcome, versus = "not considered (limited run)", "-"
        else:
            outcome = "**yes**" if decision["promoted"] else "no"
            versus = f"run {decision['champion_run']}" if decision.get("champion_run") else "no champion"
        lines.append(f"| {_cell(name)} | {outcome} | {_cell(versus)} | {_cell(decision['reason'])} |")
    return "\n".join(lines)
