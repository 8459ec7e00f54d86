"""One model's charts, drawn as soon as that model is evaluated, so that the report only collects them.

Why: a model's charts (two seaborn heatmaps, its training curves, a strip of confident mistakes and the compact
copies the Prefect UI shows) are most of the report's time: ~1.2 s per model on a 2-core machine, plus ~1.1 s
importing seaborn. Drawn right after each evaluation, the ANNs' charts are ready while the CNN still trains; the
report then finds them in the chart cache (`charts.cache_charts_in`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnist_pipeline.report import charts
from mnist_pipeline.report.artifact_pictures import compact_png, plot_mistakes
from mnist_pipeline.report.mistakes import Mistake


def draw_model_charts(
    matrix: np.ndarray, history: dict[str, Sequence[float]], color: str, mistakes: Sequence[Mistake]
) -> None:
    """Draw every per-model picture the report and the UI artifacts show, into the active chart cache."""
    pictures = (
        charts.plot_confusion(matrix, normalise=False),
        charts.plot_confusion(matrix, normalise=True),
        charts.plot_training(history, color),
        plot_mistakes(mistakes),
    )
    for picture in pictures:
        if picture is not None:
            compact_png(picture, cached=True)
