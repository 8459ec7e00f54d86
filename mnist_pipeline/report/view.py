"""Turn metrics.json (this run and earlier ones) into what the report template shows: rows, pairs, charts.

Formatting of single numbers lives in the template filters; here we only choose, order and compute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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
    """The largest off-diagonal cells: which true class is most often taken for which other (ties row by row)."""
    counts = np.asarray(matrix, dtype=np.int64)
    errors = np.where(np.eye(*counts.shape, dtype=bool), 0, counts)
    support = counts.sum(axis=1)
    cells = zip(*np.unravel_index(np.argsort(-errors, axis=None, kind="stable")[:limit], errors.shape), strict=True)
    return [
        {"true": int(i), "predicted": int(j), "count": int(errors[i, j]), "share": float(errors[i, j] / support[i])}
        for i, j in cells
        if errors[i, j]
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
    new = read_set(model, "new") or {}
    return {
        "name": name,
        "anchor": anchor,
        "color": color,
        "accuracy": model["test_accuracy"],
        "new_accuracy": new.get("accuracy"),
        "new_rows": new.get("rows"),
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
        "trust": charts.plot_trust(model.get("calibration") or {}, model.get("selective") or {}, color),
        "selective": model.get("selective"),
        "gallery": mistakes,
    }


def model_names(runs: Iterable[dict[str, Any]]) -> list[str]:
    """Every model any of `runs` trained, in the order they first appear."""
    return list(dict.fromkeys(name for run in runs for name in run.get("models", {})))


def read_accuracy(model: Any) -> float | None:
    """A model's test accuracy from a run's metrics.json; None when absent or not a number."""
    value = model.get("test_accuracy") if isinstance(model, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_set(model: Any, split: str) -> dict[str, Any] | None:
    """A model's scores on one evaluation set (`eval.<split>` in metrics.json), or None: runs recorded before
    evaluation sets have only `test` figures, and a run without new data has no `new` set."""
    sets = model.get("eval") if isinstance(model, dict) else None
    scores = sets.get(split) if isinstance(sets, dict) else None
    return scores if isinstance(scores, dict) else None


def read_new_accuracy(model: Any) -> float | None:
    """A model's accuracy on the `new` set from a run's metrics.json; None when it had none."""
    scores = read_set(model, "new") or {}
    value = scores.get("accuracy")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_new_rows(run: dict[str, Any]) -> int | None:
    """How many new images (the increments' test parts) the run's dataset version had; runs recorded before
    versions grew have no `new_rows` and had none."""
    value = (run.get("data") or {}).get("new_rows", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_new_images(run: dict[str, Any]) -> int | None:
    """How many images of accepted increments the run's dataset version held, trained on and in `new`; runs
    recorded before `increment_rows` existed count the `new` set only."""
    rows = (run.get("data") or {}).get("increment_rows")
    if isinstance(rows, dict) and all(isinstance(rows.get(part), int) for part in ("train", "test")):
        return rows["train"] + rows["test"]
    return read_new_rows(run)


def read_increments(run: dict[str, Any]) -> int:
    """How many accepted increments the run's dataset version held (none before versions grew)."""
    increments = (run.get("data") or {}).get("increments")
    return len(increments) if isinstance(increments, list) else 0


def read_promoted(run: dict[str, Any], name: str) -> bool:
    """Whether the run's `name` model became the champion, from its metrics.json `champion` decisions."""
    decisions = run.get("champion")
    decision = decisions.get(name) if isinstance(decisions, dict) else None
    return isinstance(decision, dict) and decision.get("promoted") is True


def build_run_rows(runs: Sequence[dict[str, Any]], current: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The model names (`current`'s first) and one row per run, in the order given: the history table, the run
    index and the accuracy trend. Earlier runs' metrics.json may be odd: what is not a number shows as no value."""
    names = model_names([current, *runs])
    rows = [
        {
            "name": run["run"]["name"],
            "started_at": run["run"].get("started_at"),
            "profile": run["run"].get("profile"),
            "fingerprint": str((run.get("data") or {}).get("fingerprint", "")),
            "source": (run.get("data") or {}).get("source", ""),
            "test_rows": (run.get("data") or {}).get("test_rows"),
            "new_rows": read_new_rows(run),
            "new_images": read_new_images(run),
            "increments": read_increments(run),
            "validated": (run.get("validation") or {}).get("success"),
            "current": run is current,
            "accuracies": [read_accuracy(run["models"].get(name)) for name in names],
            "new_accuracies": [read_new_accuracy(run["models"].get(name)) for name in names],
            "promoted": [read_promoted(run, name) for name in names],
        }
        for run in runs
    ]
    return names, rows


def collect_series(names: Sequence[str], rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[Any]]:
    """Each model's `key` values ("accuracies", "new_accuracies", "promoted"), run after run, for a chart."""
    return {name: [row[key][index] for row in rows] for index, name in enumerate(names)}


def build_history(history: Sequence[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    """Accuracy of every model on both sets across earlier runs and this one (oldest first), with the dataset
    version each trained on and its new images, as a table and a chart."""
    names, rows = build_run_rows([*history, metrics], metrics)
    chart = None
    if len(rows) > 1:
        labels, colors = [row["name"] for row in rows], assign_colors(names)
        series, new_series = collect_series(names, rows, "accuracies"), collect_series(names, rows, "new_accuracies")
        chart = charts.plot_history(labels, series, colors, new_series=new_series)
    has_new = any(accuracy is not None for row in rows for accuracy in row["new_accuracies"])
    return {"names": names, "rows": rows, "chart": chart, "has_new": has_new}


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
    names, runs = build_run_rows([latest[profile] for profile in profiles], metrics)
    series = collect_series(names, runs, "accuracies")
    seed_study = seed_study_for(metrics)
    rows = [{"name": name, "seed_study": seed_study.get(name), "accuracies": series[name]} for name in names]
    return {"profiles": profiles, "runs": [run["name"] for run in runs], "rows": rows}


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
        "history": build_history(history, metrics),
        "profiles": build_profile_comparison(history, metrics),
        "champion": metrics.get("champion") or {},
        "has_new": any(model["new_accuracy"] is not None for model in models),
        "champion_has_new": any(
            isinstance(decision, dict) and decision.get("challenger_new_accuracy") is not None
            for decision in (metrics.get("champion") or {}).values()
        ),
    }
