"""Ask a chosen model about inputs: one Prediction per image (digit, probability, top 3), plus the failures.

Probabilities are softmax of the head's logits from the model's ONNX file, computed by the engine and formula
evaluation uses (`modeling.serving`), so they equal evaluation's `confidence` for the same image: the CNN's own
softmax output, and for the sigmoid-headed ANNs the distribution their training loss fitted.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_pipeline.modeling.serving import Engine, open_engine, softmax
from mnist_pipeline.predict.inputs import load_inputs
from mnist_pipeline.predict.model_choice import ModelChoice

FORMATS = ("table", "json", "csv")
FIELDS = ("input", "label", "probability", "top3", "model", "model_key", "model_path")


@dataclass(frozen=True)
class Prediction:
    input: str
    label: int
    probability: float
    top3: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Answer:
    """Everything one `predict` call produced; `images` are the prepared inputs the model saw, in order."""

    choice: ModelChoice
    predictions: list[Prediction]
    failures: list[tuple[str, str]]
    images: np.ndarray


def predict_images(engine: Engine, images: np.ndarray, names: list[str]) -> list[Prediction]:
    """One Prediction per image (uint8, the engine's input shape)."""
    if not len(images):
        return []
    probabilities = softmax(engine.logits(images))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    return [
        Prediction(
            input=name,
            label=int(ranked[0]),
            probability=float(row[ranked[0]]),
            top3=tuple((int(digit), float(row[digit])) for digit in ranked),
        )
        for name, row, ranked in zip(names, probabilities, order, strict=True)
    ]


def answer(choice: ModelChoice, paths: list[Path]) -> Answer:
    """Load the chosen model, read and prepare every input, predict; bad inputs become failures."""
    engine = open_engine(choice.layout, choice.model, choice.key)
    loaded = load_inputs(paths, engine.input_shape)
    return Answer(choice, predict_images(engine, loaded.images, loaded.names), loaded.failures, loaded.images)


def to_records(result: Answer) -> list[dict[str, Any]]:
    """JSON-ready rows: input, label, probability and top3 (what `--format json`/`csv` promise) plus the model."""
    return [
        {
            "input": prediction.input,
            "label": prediction.label,
            "probability": round(prediction.probability, 6),
            "top3": [{"label": digit, "probability": round(prob, 6)} for digit, prob in prediction.top3],
            "model": result.choice.model,
            "model_key": result.choice.key,
            "model_path": str(result.choice.path),
        }
        for prediction in result.predictions
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
        lines.append(f"{'input':<{width}}  digit  probability  top 3")
        for record in records:
            top3 = "  ".join(f"{item['label']} {100 * item['probability']:5.1f} %" for item in record["top3"])
            lines.append(
                f"{record['input']:<{width}}  {record['label']:>5}  {100 * record['probability']:9.1f} %  {top3}"
            )
    return "\n".join(lines)
