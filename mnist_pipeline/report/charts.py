"""Charts for the report and the UI artifacts as inline PNG data URIs (matplotlib Agg, seaborn): no other files.

matplotlib and seaborn are imported inside the functions: importing the CLI must stay cheap. Figures are built
as `Figure` objects rendered by the Agg canvas, never through pyplot's global state; the style, though, is
matplotlib's process-wide rc settings, so figures are drawn one at a time (the models' `charts` tasks run in
threads side by side, and one task's restored settings would otherwise land in another's half-drawn figure).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import math
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from mnist_pipeline.files.atomic import write_text_atomic
from mnist_pipeline.report.mistakes import Mistake

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)
_CACHE_DIR: ContextVar[Path | None] = ContextVar("chart_cache_dir", default=None)
_DRAWING = threading.RLock()
CODE_HASH = hashlib.sha256(Path(__file__).read_bytes()).digest()
CACHE_UNUSED_DAYS = 30
DPI = 144
# The Prefect UI's artifact column is about 900 CSS pixels wide at a 1280-pixel window; its copies use few colours.
MAX_WIDTH = 880
PALETTE_COLORS = 64
MISTAKES_SHOWN = 8
PNG_PREFIX = "data:image/png;base64,"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#39424e",
    "xtick.color": "#39424e",
    "ytick.color": "#39424e",
    "axes.grid": False,
    "grid.color": "#e3e7eb",
    "legend.frameon": False,
    "svg.fonttype": "none",
    "text.parse_math": False,  # names from data show literally: a `$` would otherwise start mathtext
}
SEED_COLOR = "#c3c9d0"
CHAMPION_COLOR = "#7d8894"
DIAGONAL_COLOR = "#eef1f4"


@contextmanager
def new_figure(width: float, height: float) -> Iterator[Figure]:
    """A styled Agg figure, independent of pyplot."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def to_data_uri(save: Callable[[io.BytesIO], object]) -> str:
    """The PNG that `save` writes into a buffer, as a data URI."""
    buffer = io.BytesIO()
    save(buffer)
    return PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_uri(figure: Figure) -> str:
    return to_data_uri(lambda buffer: figure.savefig(buffer, format="png", dpi=DPI, facecolor="white"))


def plot_accuracy(
    names: Sequence[str],
    accuracies: Sequence[float],
    references: Sequence[float | None],
    colors: Sequence[str],
    champions: Sequence[float | None] | None = None,
) -> str:
    """Horizontal bars of this run beside the seed study (when any reference is given) and the champion it faced
    (when given).

    The axis starts near the lowest score so gaps show. Cached like the per-model charts: its inputs change only
    when a model or a champion does, so a re-run that trained nothing draws neither the report's nor the
    artifact's (~0.45 s each on a loaded 2-core machine).
    """
    inputs = (
        list(names),
        list(accuracies),
        list(references),
        list(colors),
        None if champions is None else list(champions),
    )
    return cast(str, cached_chart("accuracy", inputs, lambda: _draw_accuracy(*inputs)))


def _draw_accuracy(
    names: Sequence[str],
    accuracies: Sequence[float],
    references: Sequence[float | None],
    colors: Sequence[str],
    champions: Sequence[float | None] | None,
) -> str:
    series = [("this run", accuracies, colors, "#000000")]
    if any(reference is not None for reference in references):
        series.append(("seed study", references, SEED_COLOR, "#5b6570"))
    if champions is not None:
        series.append(("champion before this run", champions, CHAMPION_COLOR, "#5b6570"))
    values = [100 * v for _, group, _, _ in series for v in group if v is not None]
    low = max(0.0, math.floor(min(values) - 2)) if values else 0.0
    rows = np.arange(len(names))
    height = 0.72 / len(series)
    with new_figure(7.2, 0.75 + 0.31 * len(series) * len(names)) as figure:
        ax = figure.add_subplot()
        for index, (label, group, color, text_color) in enumerate(series):
            offsets = rows + (index - (len(series) - 1) / 2) * height
            widths = 100 * np.array(group, dtype=float)  # NaN where a value is missing: no bar
            bars = ax.barh(offsets, widths, height=height * 0.95, color=color, label=label)
            ax.bar_label(bars, fmt="%.2f %%", padding=3, fontsize=8, color=text_color)  # none on a missing bar
        ax.set_yticks(rows, names)
        ax.invert_yaxis()
        ax.set_xlim(low, 100.8)
        ax.set_xlabel(f"test accuracy (%), axis starts at {low:.0f} %")
        ax.xaxis.grid(True)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(series), fontsize=8)
        return figure_uri(figure)


@contextmanager
def cache_charts_in(directory: Path) -> Iterator[None]:
    """Keep the per-model and accuracy charts drawn inside this block under `directory`, keyed by their inputs and
    this module's code, so a re-run whose models did not change draws none of them again (they are most of a
    report's time)."""
    token = _CACHE_DIR.set(directory)
    try:
        yield
    finally:
        _CACHE_DIR.reset(token)


def cached_chart(kind: str, inputs: Any, draw: Callable[[], str | None]) -> str | None:
    """`draw()`, or the picture it drew before from the same `inputs` and this module's code, inside
    `cache_charts_in` only. The key hashes the pickled inputs: an exact encoding, so equal keys mean equal inputs."""
    directory = _CACHE_DIR.get()
    if directory is None:
        return draw()
    key = hashlib.sha256(CODE_HASH + kind.encode() + pickle.dumps(inputs)).hexdigest()[:32]
    path = directory / f"{kind}-{key}.txt"
    try:
        uri = path.read_text() or None
        os.utime(path)  # its modification time is its last use, for `prune_chart_cache`
        return uri
    except OSError:
        uri = draw()
    try:
        write_text_atomic(path, uri or "")
    except OSError as exc:  # the cache only saves time; an unwritable folder must not fail the report
        logger.debug("chart cache %s not written: %s", path, exc)
    return uri


def prune_chart_cache(directory: Path) -> list[Path]:
    """Remove cached charts no run has used for `CACHE_UNUSED_DAYS`: models that were retrained or dropped leave
    charts nobody reads again. Returns what went."""
    cutoff = time.time() - CACHE_UNUSED_DAYS * 86400
    removed = []
    for path in directory.glob("*.txt"):
        with contextlib.suppress(OSError):  # another run removed or refreshed it meanwhile
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


def plot_confusion(matrix: np.ndarray, normalise: bool) -> str:
    """Counts (annotated), or row percentages with the diagonal greyed out so the colour scale shows only errors."""
    counts = np.ascontiguousarray(matrix, dtype=np.int64)
    return cast(str, cached_chart("confusion", (counts, normalise), lambda: _draw_confusion(counts, normalise)))


def _draw_confusion(counts: np.ndarray, normalise: bool) -> str:
    import seaborn as sns

    n = counts.shape[0]
    annotate = n <= 20
    with new_figure(4.6, 4.0) as figure:
        ax = figure.add_subplot()
        if normalise:
            rows = counts.sum(axis=1, keepdims=True)
            shares = np.divide(100.0 * counts, rows, out=np.zeros(counts.shape), where=rows > 0)
            diagonal = np.eye(n, dtype=bool)
            cap = max(float(shares[~diagonal].max()) if n > 1 else 0.0, 1.0)
            labels = np.where(shares >= 0.05, np.char.mod("%.1f", shares), "")
            ax.set_facecolor(DIAGONAL_COLOR)
            sns.heatmap(
                shares,
                ax=ax,
                mask=diagonal,
                cmap="OrRd",
                vmin=0,
                vmax=cap,
                annot=labels if annotate else False,
                fmt="",
                annot_kws={"fontsize": 6.5},
                cbar_kws={"label": "% of the true class (errors)"},
                square=True,
            )
            if annotate:
                for k in range(n):
                    ax.text(k + 0.5, k + 0.5, labels[k, k], ha="center", va="center", fontsize=6.5, color="#5b6570")
        else:
            sns.heatmap(
                counts,
                ax=ax,
                cmap="Blues",
                annot=annotate,
                fmt="d",
                annot_kws={"fontsize": 6.5},
                cbar_kws={"label": "images"},
                square=True,
            )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(length=0)
        return figure_uri(figure)


def plot_training(history: dict[str, Sequence[float]], color: str) -> str | None:
    """Loss and accuracy per epoch, validation dashed when recorded; None when nothing was recorded."""
    shown = {
        key: [float(v) for v in history.get(key) or []] for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    return cached_chart("training", (shown, color), lambda: _draw_training(shown, color))


def _draw_training(history: dict[str, list[float]], color: str) -> str | None:
    panels = [(key, title) for key, title in (("loss", "loss"), ("accuracy", "accuracy (%)")) if history.get(key)]
    if not panels:
        return None
    with new_figure(6.4, 2.5) as figure:
        for index, (key, title) in enumerate(panels, start=1):
            ax = figure.add_subplot(1, len(panels), index)
            scale = 100 if key == "accuracy" else 1
            for series, style, label in ((key, "-", "train"), (f"val_{key}", "--", "validation")):
                values = history.get(series) or []
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    ax.plot(epochs, np.asarray(values) * scale, style, marker="o", ms=3, color=color, label=label)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.yaxis.grid(True)
            ax.legend(fontsize=7)
        return figure_uri(figure)


def plot_history(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    colors: dict[str, str],
    marks: dict[str, Sequence[bool]] | None = None,
    new_series: dict[str, Sequence[float | None]] | None = None,
) -> str:
    """Each model's test accuracy run after run (gaps where a run did not train that model), and, dashed in the
    same colour, its accuracy on the `new` set where runs had one (`new_series`).

    `marks` flags, per model and run, the points to ring: the runs whose model became the champion.
    """
    x = np.arange(len(labels))
    shown_new = {name: values for name, values in (new_series or {}).items() if any(v is not None for v in values)}
    with new_figure(7.2, 2.8) as figure:
        ax = figure.add_subplot()
        for name, values in series.items():
            y = 100 * np.array(values, dtype=float)  # None, where a run did not train the model, becomes NaN
            ax.plot(x, y, "-o", ms=4, color=colors[name], label=f"{name} (test)" if shown_new else name)
            flags = np.asarray((marks or {}).get(name) or [False] * len(values), dtype=bool)
            if flags.any():
                ax.plot(x[flags], y[flags], "o", ms=10, mfc="none", mec=colors[name], mew=1.6)
        for name, values in shown_new.items():
            ax.plot(x, 100 * np.array(values, dtype=float), "--s", ms=3, color=colors[name], label=f"{name} (new)")
        if marks and any(any(flags) for flags in marks.values()):
            ax.plot([], [], "o", ms=10, mfc="none", mec="#39424e", mew=1.6, label="new champion")
        crowded = len(labels) > 4
        ax.set_xticks(x, labels, rotation=30 if crowded else 0, ha="right" if crowded else "center", fontsize=7)
        ax.set_ylabel("accuracy (%)" if shown_new else "test accuracy (%)")
        ax.yaxis.grid(True)
        ax.legend(
            fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(series) + len(shown_new) + 1, 4)
        )
        return figure_uri(figure)


def plot_trust(calibration: dict[str, Any], selective: dict[str, Any], color: str) -> str | None:
    """The reliability diagram (accuracy against confidence per bin, before and after calibration; on the diagonal
    is honest) and the risk-coverage curve (error among the most confident answers against the share answered,
    with the threshold's point); None for an evaluation recorded without them."""
    if "reliability" not in calibration or "curve" not in selective:
        return None
    inputs = (calibration, selective, color)
    return cached_chart("trust", inputs, lambda: _draw_trust(*inputs))


def _draw_trust(calibration: dict[str, Any], selective: dict[str, Any], color: str) -> str:
    with new_figure(7.2, 2.7) as figure:
        left, right = figure.subplots(1, 2)
        left.plot([0, 100], [0, 100], color=DIAGONAL_COLOR, lw=3)
        for key, style, label in (("reliability_before", "--", "before"), ("reliability", "-o", "calibrated")):
            points = calibration.get(key) or {}
            confidence, accuracy = np.asarray(points.get("confidence", [])), np.asarray(points.get("accuracy", []))
            left.plot(100 * confidence, 100 * accuracy, style, ms=3, color=color, label=label)
        left.set_title(
            f"reliability (ECE {100 * calibration['ece_after']:.2f} %, before {100 * calibration['ece_before']:.2f} %)"
        )
        left.set_xlabel("confidence (%)")
        left.set_ylabel("accuracy (%)")
        left.legend(fontsize=7)
        curve = selective["curve"]
        right.plot(100 * np.asarray(curve["coverage"]), 100 * np.asarray(curve["error"]), "-", color=color)
        right.axhline(100 * selective["target_error"], ls="--", lw=1, color=CHAMPION_COLOR, label="target error")
        right.plot(
            [100 * selective["coverage"]], [100 * selective["error"]], "o", color="#000000", ms=5, label="threshold"
        )
        right.set_title(f"risk-coverage ({100 * selective['coverage']:.1f} % answered)")
        right.set_xlabel("answered (%)")
        right.set_ylabel("error among answered (%)")
        right.yaxis.grid(True)
        right.legend(fontsize=7)
        return figure_uri(figure)


def digit_png(image: np.ndarray) -> str:
    """A digit as a tiny PNG, dark ink on white like the page; the browser scales it up pixel-sharp."""
    from matplotlib.image import imsave

    return to_data_uri(lambda buffer: imsave(buffer, np.asarray(image), cmap="gray_r", vmin=0, vmax=255, format="png"))


def plot_mistakes(mistakes: Sequence[Mistake]) -> str | None:
    """The most confident mistakes in one strip: each digit titled `true → predicted` and the confidence."""
    shown = list(mistakes)[:MISTAKES_SHOWN]
    if not shown:
        return None
    return cached_chart("mistakes", shown, lambda: _draw_mistakes(shown))


def _draw_mistakes(shown: Sequence[Mistake]) -> str:
    with new_figure(7.2, 1.35) as figure:
        for index, mistake in enumerate(shown, start=1):
            ax = figure.add_subplot(1, MISTAKES_SHOWN, index)
            ax.imshow(np.asarray(mistake.image), cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{mistake.label} → {mistake.predicted}\n{100 * mistake.confidence:.0f} %", fontsize=8)
            ax.set_axis_off()
        return figure_uri(figure)


def compact_png(data_uri: str, cached: bool = False) -> str:
    """The same picture for the Prefect UI, which stores every artifact in its database: no wider than
    `MAX_WIDTH`, as a palette PNG (charts use few colours), so a whole run stays far below 1 MB.

    `cached`: keep it in the chart cache, for per-model pictures only (the run-level ones change every run).
    """
    if not cached:
        return _compact_png(data_uri)
    return cast(str, cached_chart("compact", data_uri, lambda: _compact_png(data_uri)))


def _compact_png(data_uri: str) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(data_uri.removeprefix(PNG_PREFIX)))) as source:
        image = source.convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.Resampling.LANCZOS)
    palette = image.quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT)
    return to_data_uri(lambda buffer: palette.save(buffer, format="PNG", optimize=True))


def draw_model_charts(
    matrix: np.ndarray,
    history: dict[str, Sequence[float]],
    color: str,
    mistakes: Sequence[Mistake],
    trust: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Draw every per-model picture the report and the UI artifacts show, with their UI copies, into the active
    chart cache: the `charts` task does it right after each evaluation, so the ANNs' are ready while the CNN still
    trains (a model's pictures are ~1.2 s on 2 cores, plus ~1.1 s importing seaborn), and the report finds them."""
    pictures = (
        plot_confusion(matrix, normalise=False),
        plot_confusion(matrix, normalise=True),
        plot_training(history, color),
        plot_mistakes(mistakes),
        plot_trust(*trust, color),
    )
    for picture in pictures:
        if picture is not None:
            compact_png(picture, cached=True)
