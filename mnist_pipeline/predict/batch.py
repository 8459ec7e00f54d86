"""Batch scoring for the `batch-predict` flow, Prefect-free: checked parameters, predictions.parquet written
atomically, and the markdown for the artifact (class counts, the unsure inputs, a thumbnail grid); a batch is a
population, so its threshold may be raised (`modeling.calibration`).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mnist_pipeline import defaults
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.atomic import atomic_path
from mnist_pipeline.markdown import escape_markdown, markdown_table
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL, find_model
from mnist_pipeline.predict.answer import Answer, answer, describe_coverage
from mnist_pipeline.predict.model_choice import ModelChoice

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("label", pa.int64()),
        ("probability", pa.float64()),
        ("top3", pa.list_(pa.struct([("label", pa.int64()), ("probability", pa.float64())]))),
        ("unsure", pa.bool_()),
        ("model", pa.string()),
        ("model_key", pa.string()),
    ]
)
THUMBNAILS = 16
GRID_COLUMNS = 8
UNSURE_ROWS = 20


@dataclass(frozen=True)
class BatchConfig:
    """The flow's parameters, checked: what to score, with which champion, where the results go."""

    input: Path
    model: str
    data_dir: Path
    output_dir: Path
    target_error: float
    answer_all: bool


@dataclass(frozen=True)
class BatchSummary:
    """What a batch-predict run did: where its predictions are, how many inputs were scored, how many of them it was
    not sure of, which failed."""

    predictions: str
    scored: int
    unsure: int
    failed: list[str]
    model_key: str


def build_batch_config(**values: Any) -> BatchConfig:
    """Validate raw flow parameters; each problem is one line naming the parameter, as the training flow does."""
    raw_input = values.get("input")
    if not raw_input or not Path(str(raw_input)).exists():
        raise PipelineError(f"input: expected an existing folder or Parquet file, found {raw_input!r}")
    model = find_model(values.get("model") or DEFAULT_PREDICT_MODEL).name
    target = values.get("target_error", defaults.TARGET_ERROR)
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise PipelineError(f"target_error: expected an error rate in (0, 1), found {target!r}")
    return BatchConfig(
        input=Path(str(raw_input)).resolve(),
        model=model,
        data_dir=Path(values.get("data_dir") or defaults.DATA_DIR).resolve(),
        output_dir=Path(values.get("output_dir") or defaults.PREDICTIONS_DIR).resolve(),
        target_error=float(target),
        answer_all=bool(values.get("answer_all", False)),
    )


def predictions_table(result: Answer) -> pa.Table:
    """One row per scored input: input, label (the digit; null when not sure), probability, top 3, unsure, and which
    model answered.

    `score_batch` writes it only with at least one row, from which Arrow infers each column's type."""
    rows = [
        {
            "input": p.input,
            "label": p.label,
            "probability": p.probability,
            "top3": [{"label": digit, "probability": probability} for digit, probability in p.top3],
            "unsure": p.unsure,
            "model": result.choice.model,
            "model_key": result.choice.key,
        }
        for p in result.predictions.items
    ]
    return pa.Table.from_pylist(rows, schema=PREDICTIONS_SCHEMA)


def thumbnail_uri(image: np.ndarray) -> str:
    """A 2x nearest-neighbour PNG of a prepared image, as a data: URI (the Prefect UI renders it inline)."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.Resampling.NEAREST).save(
        buffer, format="PNG"
    )
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_batch_markdown(result: Answer, output: Path, title: str) -> str:
    """Class counts, the inputs it is not sure of, a grid of the first inputs as the model saw them, failures."""
    predictions = result.predictions.items
    counts = np.bincount([p.label for p in predictions if p.label is not None], minlength=10)
    lines = [
        f"# Batch predictions, {escape_markdown(title)}",
        "",
        f"Model: {escape_markdown(result.choice.describe())}.",
        f"{len(predictions)} inputs scored, {len(result.failures)} failed; "
        f"{escape_markdown(describe_coverage(result.predictions))}. Predictions: {escape_markdown(str(output))}",
        "",
        "## Class counts (answered inputs)",
        "",
        "| digit | " + " | ".join(str(digit) for digit in range(len(counts))) + " |",
        "|---|" + "---:|" * len(counts),
        "| inputs | " + " | ".join(str(count) for count in counts) + " |",
    ]
    unsure = sorted((p for p in predictions if p.unsure), key=lambda p: p.probability)
    lines += ["", f"## Not sure: {len(unsure)}", ""]
    if unsure:
        rows = [
            (
                p.input,
                p.top,
                f"{100 * p.probability:.1f} %",
                ", ".join(f"{digit} ({100 * prob:.1f} %)" for digit, prob in p.top3),
            )
            for p in unsure[:UNSURE_ROWS]
        ]
        lines += markdown_table(("input", "best guess", "probability", "top 3"), rows, align="lrrl")
    shown = min(THUMBNAILS, len(predictions))
    lines += ["", f"## The first {shown} inputs, as the model saw them", ""]
    cells = [
        f"![{p.top}]({thumbnail_uri(result.images[index])})<br>**{'?' if p.unsure else p.top}** "
        f"{100 * p.probability:.0f} %"
        for index, p in enumerate(predictions[:shown])
    ]
    if cells:
        columns = min(GRID_COLUMNS, len(cells))
        lines += ["|" + " |" * columns, "|" + "---|" * columns]
        for start in range(0, len(cells), columns):
            lines.append("| " + " | ".join(cells[start : start + columns]) + " |")
    if result.failures:
        lines += ["", "## Failed inputs", ""]
        lines += [f"- {escape_markdown(name)}: {escape_markdown(problem)}" for name, problem in result.failures]
    return "\n".join(lines)


def score_batch(choice: ModelChoice, config: BatchConfig, output: Path, title: str) -> tuple[Answer, str]:
    """Predict every input, write `output` (Parquet, atomically), and return the answer and its markdown."""
    result = answer(choice, [config.input], config.target_error, config.answer_all)
    if not result.predictions.items:
        problems = "; ".join(f"{name}: {problem}" for name, problem in result.failures[:3])
        raise PipelineError(f"input: expected at least one readable image in {config.input}, found none ({problems})")
    with atomic_path(output) as tmp:
        pq.write_table(predictions_table(result), tmp)
    return result, render_batch_markdown(result, output, title)
