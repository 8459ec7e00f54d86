"""Turn metrics.json (this run and earlier ones) into what the report template shows: rows, pairs, charts.

Formatting of single numbers lives in the template filters; here we only choose, order and compute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_pipeline.modeling.profiles import profile_names
from mnist_pipeline.report import charts
from mnist_pipeline.report.mistakes import Mistake
from mnist_pipeline.runs.metrics import seed_study_for

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CONFUSED_PAIRS = 5


def assign_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per model, the same in every chart of the page."""
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def make_anchors(names: Sequence[str]) -> dict[str, str]:
    """Stable, unique, id-safe anchors for model names (which may contain anything)."""
    anchors: dict[str, str] = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "model"
        anchor, suffix = base, 2
        while anchor in anchors.values():
            anchor, suffix = f"{base}-{suffix}", suffix + 1
        anchors[name] = anchor
    return anchors


def find_confused_pairs(matrix: np.ndarray, limit: int = CONFUSED_PAIRS) -> list[dict[str, Any]]:
    """The largest off-diagonal cells: which true class is most often taken for which other."""
    counts = np.asarray(matrix, dtype=np.int64)
    support = counts.sum(axis=1)
    cells = [
        (int(counts[i, j]), i, j)
        for i in range(counts.shape[0])
        for j in range(counts.shape[1])
        if i != j and counts[i, j]
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [
        {"true": i, "predicted": j, "count": count, "share": count / support[i] if support[i] else 0.0}
        for count, i, j in cells[:limit]
    ]


def build_per_class(per_class: dict[str, Sequence[float]], n_classes: int) -> list[dict[str, Any]]:
    """One row per class; the weakest F1 is flagged so the eye finds it."""
    f1 = list(per_class.get("f1") or [])
    weakest = min(range(len(f1)), key=f1.__getitem__) if f1 else None
    support = per_class.get("support") or [None] * n_classes
    return [
        {
            "label": label,
            "precision": per_class["precision"][label],
            "recall": per_class["recall"][label],
            "f1": f1[label] if f1 else None,
            "support": support[label],
            "weakest": label == weakest,
        }
        for label in range(n_classes)
    ]


def build_model_view(
    name: str,
    model: dict[str, Any],
    anchor: str,
    color: str,
    mistakes: Sequence[Mistake],
    reference: float | None,
) -> dict[str, Any]:
    """Everything the page shows about one model; `reference` is the seed study's accuracy, when it applies."""
    matrix = np.asarray(model["confusion_matrix"], dtype=np.int64)
    return {
        "name": name,
        "anchor": anchor,
        "color": color,
        "accuracy": model["test_accuracy"],
        "reference": reference,
        "delta": model["test_accuracy"] - reference if reference is not None else None,
        "loss": model["test_loss"],
        "train_seconds": model["train_seconds"],
        "epochs": model["epochs"],
        "epochs_run": model.get("epochs_run", model["epochs"]),
        "batch_size": model["batch_size"],
        "params": model.get("params"),
        "cached": bool(model.get("cached")),
        "test_rows": int(matrix.sum()),
        "errors": int(matrix.sum() - np.trace(matrix)),
        "heatmap": charts.plot_confusion(matrix, normalise=False),
        "heatmap_normalised": charts.plot_confusion(matrix, normalise=True),
        "confused_pairs": find_confused_pairs(matrix),
        "per_class": build_per_class(model["per_class"], matrix.shape[0]),
        "curves": charts.plot_training(model.get("history") or {}, color),
        "gallery": [
            {
                "image": charts.digit_png(m.image),
                "row_id": m.row_id,
                "label": m.label,
                "predicted": m.predicted,
                "confidence": m.confidence,
            }
            for m in mistakes
        ],
    }


def build_history(history: Sequence[dict[str, Any]], metrics: dict[str, Any], colors: dict[str, str]) -> dict[str, Any]:
    """Accuracy of every model across earlier runs and this one (oldest first), as a table and a chart."""
    runs = [*history, metrics]
    names = list(metrics["models"])
    for run in history:
        names += [name for name in run.get("models", {}) if name not in names]
    colors = {**assign_colors(names), **colors}
    rows = [
        {
            "name": run.get("run", {}).get("name", "?"),
            "started_at": run.get("run", {}).get("started_at", ""),
            "fingerprint": run.get("data", {}).get("fingerprint", ""),
            "current": run is metrics,
            "accuracies": [run.get("models", {}).get(name, {}).get("test_accuracy") for name in names],
        }
        for run in runs
    ]
    series = {name: [row["accuracies"][index] for row in rows] for index, name in enumerate(names)}
    labels = [row["name"] for row in rows]
    return {
        "names": names,
        "rows": rows,
        "chart": charts.plot_history(labels, series, colors) if len(rows) > 1 else None,
    }


def _is_full_run(run: dict[str, Any]) -> bool:
    parameters = run.get("run", {}).get("parameters") or {}
    return not parameters.get("train_limit") and not parameters.get("test_limit")


def build_profile_comparison(history: Sequence[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Each architecture under each training profile: the newest full run per profile on this run's dataset.

    None until at least two profiles have such a run (one profile alone compares nothing).
    """
    fingerprint = metrics.get("data", {}).get("fingerprint")
    latest: dict[str, dict[str, Any]] = {}
    for run in sorted([*history, metrics], key=lambda run: run.get("run", {}).get("started_at", "")):
        profile = run.get("run", {}).get("profile")
        if profile in profile_names() and _is_full_run(run) and run.get("data", {}).get("fingerprint") == fingerprint:
            latest[profile] = run
    if len(latest) < 2:
        return None
    profiles = [profile for profile in profile_names() if profile in latest]
    names = list(metrics["models"])
    for run in latest.values():
        names += [name for name in run.get("models", {}) if name not in names]
    seed_study = seed_study_for(metrics)
    rows = [
        {
            "name": name,
            "seed_study": seed_study.get(name),
            "accuracies": [latest[p].get("models", {}).get(name, {}).get("test_accuracy") for p in profiles],
        }
        for name in names
    ]
    runs = [latest[profile].get("run", {}).get("name", "?") for profile in profiles]
    return {"profiles": profiles, "runs": runs, "rows": rows}


def build_champion(champion: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The champion/challenger decisions, one row per model (empty when the run made none)."""
    return [
        {
            "name": name,
            "promoted": bool(decision.get("promoted")),
            "considered": decision.get("considered", True) is not False,
            "forced": bool(decision.get("forced")),
            "challenger": decision.get("challenger_accuracy"),
            "champion": decision.get("champion_accuracy"),
            "gain": decision.get("accuracy_gain"),
            "reason": decision.get("reason", ""),
        }
        for name, decision in (champion or {}).items()
    ]


def safe_link(url: Any) -> str | None:
    """Only http(s) URLs become links: escaping does not stop a `javascript:` href."""
    return url if isinstance(url, str) and re.match(r"https?://", url) else None


def build_report_context(
    metrics: dict[str, Any], mistakes: dict[str, Sequence[Mistake]], history: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The whole template context for one run's report."""
    names = list(metrics["models"])
    colors, anchors = assign_colors(names), make_anchors(names)
    seed_study = seed_study_for(metrics)
    models = [
        build_model_view(
            name, metrics["models"][name], anchors[name], colors[name], mistakes.get(name, []), seed_study.get(name)
        )
        for name in names
    ]
    stages = [(stage, values.get("seconds", 0.0)) for stage, values in metrics.get("stages", {}).items()]
    best = max(models, key=lambda model: model["accuracy"], default=None)
    return {
        "run": metrics["run"],
        "flow_run_link": safe_link(metrics["run"].get("flow_run_url")),
        "data": metrics["data"],
        "validation": metrics.get("validation") or {},
        "models": models,
        "best": best,
        "seed_study_applies": bool(seed_study),
        "accuracy_chart": charts.plot_accuracy(
            names, [m["accuracy"] for m in models], [m["reference"] for m in models], [m["color"] for m in models]
        )
        if models
        else None,
        "stages": stages,
        "stage_total": sum(seconds for _, seconds in stages),
        "history": build_history(history, metrics, colors),
        "profiles": build_profile_comparison(history, metrics),
        "champion": build_champion(metrics.get("champion")),
    }
