"""Ask a chosen model about inputs: one Prediction per image (digit or "unsure", probability, top 3), plus the
failures. Probabilities are the calibrated softmax of the model's ONNX file, scored by evaluation's engine
(`modeling.serving`); what "unsure" means, and the thresholds, are in docs/predict.md.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_pipeline import defaults
from mnist_pipeline.modeling.serving import Engine, open_engine
from mnist_pipeline.predict.inputs import load_inputs
from mnist_pipeline.predict.model_choice import ModelChoice

FORMATS = ("table", "json", "csv")
FIELDS = ("input", "label", "probability", "top3", "unsure", "model", "model_key", "model_path")


@dataclass(frozen=True)
class Prediction:
    """One image's answer: its most probable digit and that probability, the top 3, and whether the probability
    is under the threshold (then `label` is None: "not sure")."""

    input: str
    top: int
    probability: float
    top3: tuple[tuple[int, float], ...]
    unsure: bool = False

    @property
    def label(self) -> int | None:
        return None if self.unsure else self.top


@dataclass(frozen=True)
class Predictions:
    """The predictions of one call and the confidence threshold they were answered at (0 with `answer_all`)."""

    items: list[Prediction]
    threshold: float
    target_error: float

    @property
    def unsure(self) -> int:
        return sum(prediction.unsure for prediction in self.items)


@dataclass(frozen=True)
class Answer:
    """Everything one `predict` call produced; `images` are the prepared inputs the model saw, in order."""

    choice: ModelChoice
    predictions: Predictions
    failures: list[tuple[str, str]]
    images: np.ndarray


def predict_images(
    engine: Engine,
    images: np.ndarray,
    names: list[str],
    target_error: float = defaults.TARGET_ERROR,
    answer_all: bool = False,
) -> Predictions:
    """One Prediction per image (uint8, the engine's input shape), unsure under the threshold for `target_error`."""
    if not len(images):
        return Predictions([], 0.0, target_error)
    probabilities = engine.probabilities(images)
    confidence = probabilities.max(axis=1)
    threshold = 0.0 if answer_all else engine.calibration.threshold(target_error, confidence)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    items = [
        Prediction(
            input=name,
            top=int(ranked[0]),
            probability=float(row[ranked[0]]),
            top3=tuple((int(digit), float(row[digit])) for digit in ranked),
            unsure=bool(row[ranked[0]] < threshold),
        )
        for name, row, ranked in zip(names, probabilities, order, strict=True)
    ]
    return Predictions(items, threshold, target_error)


def answer(
    choice: ModelChoice, paths: list[Path], target_error: float = defaults.TARGET_ERROR, answer_all: bool = False
) -> Answer:
    """Load the chosen model, read and prepare every input, predict; bad inputs become failures."""
    engine = open_engine(choice.layout, choice.model, choice.key)
    loaded = load_inputs(paths, engine.input_shape)
    predictions = predict_images(engine, loaded.images, loaded.names, target_error, answer_all)
    return Answer(choice, predictions, loaded.failures, loaded.images)


def to_records(result: Answer) -> list[dict[str, Any]]:
    """JSON-ready rows: input, label, probability and top3 (what `--format json`/`csv` promise) plus the model."""
    return [
        {
            "input": prediction.input,
            "label": prediction.label,
            "probability": round(prediction.probability, 6),
            "top3": [{"label": digit, "probability": round(prob, 6)} for digit, prob in prediction.top3],
            "unsure": prediction.unsure,
            "model": result.choice.model,
            "model_key": result.choice.key,
            "model_path": str(result.choice.path),
        }
        for prediction in result.predictions.items
    ]


def render(result: Answer, output_format: str) -> str:
    """The predictions as a table for people, or JSON / CSV for programs."""
    records = to_records(result)
    if output_format == "json":
        return json.dumps(records, indent=2)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            top3 = " ".join(f"{item['label']}:{item['probability']:.4f}" for item in record["top3"])
            writer.writerow({**record, "top3": top3})
        return buffer.getvalue().rstrip("\n")
    lines = [f"model: {result.choice.describe()}"]
    if records:
        width = max(len("input"), *(len(record["input"]) for record in records))
        lines.append(f"{'input':<{width}}  digit     probability  top 3")
        for record in records:
            top3 = "  ".join(f"{item['label']} {100 * item['probability']:5.1f} %" for item in record["top3"])
            digit = "not sure" if record["unsure"] else str(record["label"])
            lines.append(f"{record['input']:<{width}}  {digit:>8}  {100 * record['probability']:9.1f} %  {top3}")
    lines.append(describe_coverage(result.predictions))
    return "\n".join(lines)


def describe_coverage(predictions: Predictions) -> str:
    """How many were answered, and at what threshold: the line that tells a user what was left unanswered."""
    total = len(predictions.items)
    if predictions.threshold == 0.0:
        return f"answered {total} of {total} (--answer-all: no threshold)"
    return (
        f"answered {total - predictions.unsure} of {total}, {predictions.unsure} not sure (probability under "
        f"{predictions.threshold:.4f}, the threshold for a {100 * predictions.target_error:g} % target error)"
    )
