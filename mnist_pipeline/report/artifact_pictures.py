"""Markdown artifacts that the Prefect UI shows as pictures: the report's charts, inlined as small PNG data URIs.

The charts come from `mnist_pipeline.report.charts`, so colours and labels match the HTML report. Every artifact
is stored in the Prefect database (twice for keyed ones: the version and the key's latest copy), so each PNG is
scaled to the UI's content width and reduced to a small palette: a whole run stays far below 1 MB.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from mnist_pipeline.report import charts
from mnist_pipeline.report.mistakes import Mistake
from mnist_pipeline.runs.metrics import seed_study_for

# The artifact page's content column is about 900 CSS pixels wide at a 1280-pixel window.
MAX_WIDTH = 880
PALETTE_COLORS = 64
MISTAKES_SHOWN = 8
PNG_PREFIX = "data:image/png;base64,"
# What draws the pictures cached from here: this module and the charts module (its style).
_CODE_HASH = hashlib.sha256(charts.CODE_HASH + Path(__file__).read_bytes()).digest()


def compact_png(data_uri: str, max_width: int = MAX_WIDTH, cached: bool = False) -> str:
    """The same picture, no wider than `max_width`, as a palette PNG (charts use few colours).

    `cached`: keep it in the chart cache, for per-model pictures only (the run-level ones change every run).
    """
    if not cached:
        return _compact_png(data_uri, max_width)
    inputs = f"{max_width}|{data_uri}".encode()
    drawn = charts.cached_chart("compact", inputs, lambda: _compact_png(data_uri, max_width), code=_CODE_HASH)
    return cast(str, drawn)


def _compact_png(data_uri: str, max_width: int) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(data_uri.removeprefix(PNG_PREFIX)))) as source:
        image = source.convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def markdown_image(alt: str, data_uri: str, cached: bool = False) -> str:
    """An inline image; alt text is limited to characters that cannot end the markdown construct."""
    safe_alt = "".join(char for char in alt if char.isalnum() or char in " -_.,%()")
    return f"![{safe_alt}]({compact_png(data_uri, cached=cached)})"


def plot_mistakes(mistakes: Sequence[Mistake]) -> str | None:
    """The most confident mistakes in one strip: each digit titled `true → predicted` and the confidence."""
    shown = list(mistakes)[:MISTAKES_SHOWN]
    if not shown:
        return None
    inputs = b""
    for m in shown:
        image = np.ascontiguousarray(m.image)
        header = f"{image.shape}|{image.dtype}|{m.label}|{m.predicted}|{m.confidence!r}|{image.nbytes}|"
        inputs += header.encode() + image.tobytes()
    return charts.cached_chart("mistakes", inputs, lambda: _draw_mistakes(shown), code=_CODE_HASH)


def _draw_mistakes(shown: Sequence[Mistake]) -> str:
    with charts.new_figure(7.2, 1.35) as figure:
        for index, mistake in enumerate(shown, start=1):
            ax = figure.add_subplot(1, MISTAKES_SHOWN, index)
            ax.imshow(np.asarray(mistake.image), cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{mistake.label} → {mistake.predicted}\n{100 * mistake.confidence:.0f} %", fontsize=8)
            ax.set_axis_off()
        return charts.to_data_uri(figure)


def champion_accuracies(metrics: dict[str, Any], names: Sequence[str]) -> list[float | None]:
    """The accuracy of the champion each model faced in this run (None where there was none)."""
    decisions = metrics.get("champion") or {}
    return [(decisions.get(name) or {}).get("champion_accuracy") for name in names]


def render_accuracy_markdown(metrics: dict[str, Any], colors: dict[str, str]) -> str:
    """This run against the seed study and the champions, as the report's accuracy chart."""
    names = list(metrics["models"])
    seed_study = seed_study_for(metrics)
    chart = charts.plot_accuracy(
        names,
        [metrics["models"][name]["test_accuracy"] for name in names],
        [seed_study.get(name) for name in names],
        [colors[name] for name in names],
        champions=champion_accuracies(metrics, names),
    )
    test_rows = metrics["data"]["test_rows"]
    beside = "the seed study's published numbers and " if seed_study else ""
    return "\n".join(
        [
            f"# Test accuracy, run {metrics['run']['name']}",
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
    errors = int(matrix.sum() - np.trace(matrix))
    lines = [
        f"# {name}: {100 * model['test_accuracy']:.2f} % test accuracy, {errors} of {int(matrix.sum())} wrong",
        "",
        "## Confusion matrix (rows = true digit)",
        "",
        markdown_image(f"{name} confusion matrix, counts", charts.plot_confusion(matrix, normalise=False), cached=True),
        "",
        "Row-normalised: % of each true digit that went to each prediction (diagonal greyed out).",
        "",
        markdown_image(
            f"{name} confusion matrix, row-normalised", charts.plot_confusion(matrix, normalise=True), cached=True
        ),
    ]
    curves = charts.plot_training(model.get("history") or {}, color)
    if curves is not None:
        lines += ["", "## Training curves", "", markdown_image(f"{name} training curves", curves, cached=True)]
    strip = plot_mistakes(mistakes)
    if strip is not None:
        lines += [
            "",
            "## Most confident mistakes (true → predicted, confidence)",
            "",
            markdown_image(f"{name} most confident mistakes", strip, cached=True),
        ]
    return "\n".join(lines)
