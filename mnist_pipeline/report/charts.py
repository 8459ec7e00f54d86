"""Charts for the report as inline PNG data URIs (matplotlib Agg, seaborn), so the page needs no other file.

matplotlib and seaborn are imported inside the functions: importing the CLI must stay cheap. Figures are built
as `Figure` objects rendered by the Agg canvas, never through pyplot's global state; the style, though, is
matplotlib's process-wide rc settings, so figures are drawn one at a time (the models' `charts` tasks run in
threads side by side, and one task's restored settings would otherwise land in another's half-drawn figure).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from mnist_pipeline.files.atomic import write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)
_CACHE_DIR: ContextVar[Path | None] = ContextVar("chart_cache_dir", default=None)
_DRAWING = threading.RLock()
CODE_HASH = hashlib.sha256(Path(__file__).read_bytes()).digest()
CACHE_UNUSED_DAYS = 30
DPI = 144
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
}
SEED_COLOR = "#c3c9d0"
CHAMPION_COLOR = "#7d8894"
DIAGONAL_COLOR = "#eef1f4"


def escape_mathtext(text: str) -> str:
    """Text from data shown literally: a `$` would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


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


def to_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_accuracy(
    names: Sequence[str],
    accuracies: Sequence[float],
    references: Sequence[float | None],
    colors: Sequence[str],
    champions: Sequence[float | None] | None = None,
) -> str:
    """Horizontal bars of this run beside the seed study (when any reference is given) and the champion it faced
    (when given).

    The axis starts near the lowest score so gaps show.
    """
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
            bars = [100 * v if v is not None else np.nan for v in group]
            ax.barh(offsets, bars, height=height * 0.95, color=color, label=label)
            for offset, value in zip(offsets, group, strict=True):
                if value is not None:
                    ax.text(
                        100 * value + 0.05, offset, f"{100 * value:.2f} %", va="center", fontsize=8, color=text_color
                    )
        ax.set_yticks(rows, [escape_mathtext(name) for name in names])
        ax.invert_yaxis()
        ax.set_xlim(low, 100.8)
        ax.set_xlabel(f"test accuracy (%), axis starts at {low:.0f} %")
        ax.xaxis.grid(True)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(series), fontsize=8)
        return to_data_uri(figure)


@contextmanager
def cache_charts_in(directory: Path) -> Iterator[None]:
    """Keep the per-model charts drawn inside this block under `directory`, keyed by their inputs and this module's
    code, so a re-run whose models did not change draws none of them again (they are most of a report's time)."""
    token = _CACHE_DIR.set(directory)
    try:
        yield
    finally:
        _CACHE_DIR.reset(token)


def cached_chart(kind: str, inputs: bytes, draw: Callable[[], str | None], code: bytes = CODE_HASH) -> str | None:
    """`draw()`, or the picture it drew before from the same `inputs` and drawing `code` (a hash of the modules
    that draw it; this one by default), inside `cache_charts_in` only."""
    directory = _CACHE_DIR.get()
    if directory is None:
        return draw()
    key = hashlib.sha256(code + kind.encode() + inputs).hexdigest()[:32]
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


def prune_chart_cache(directory: Path, unused_days: float = CACHE_UNUSED_DAYS) -> list[Path]:
    """Remove cached charts no run has used for `unused_days`: models that were retrained or dropped leave charts
    nobody reads again. Returns what went."""
    cutoff = time.time() - unused_days * 86400
    removed = []
    for path in directory.glob("*.txt"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:  # another run removed or refreshed it meanwhile
            continue
    return removed


def plot_confusion(matrix: np.ndarray, normalise: bool) -> str:
    """Counts (annotated), or row percentages with the diagonal greyed out so the colour scale shows only errors."""
    counts = np.ascontiguousarray(matrix, dtype=np.int64)
    inputs = counts.tobytes() + bytes([counts.shape[0] % 256, normalise])
    return cast(
        str, cached_chart("confusion", inputs, lambda: _draw_confusion(counts.tobytes(), counts.shape[0], normalise))
    )


# The report and the UI artifacts show the same charts: each is drawn once per process (heatmaps cost ~0.3 s each).
@functools.lru_cache(maxsize=32)
def _draw_confusion(counts_bytes: bytes, n: int, normalise: bool) -> str:
    import seaborn as sns

    counts = np.frombuffer(counts_bytes, dtype=np.int64).reshape(n, n)
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
        return to_data_uri(figure)


def plot_training(history: dict[str, Sequence[float]], color: str) -> str | None:
    """Loss and accuracy per epoch, validation dashed when recorded; None when nothing was recorded."""
    shown = {
        key: [float(v) for v in history.get(key) or []] for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    history_json = json.dumps(shown)
    return cached_chart("training", f"{history_json}|{color}".encode(), lambda: _draw_training(history_json, color))


@functools.lru_cache(maxsize=32)
def _draw_training(history_json: str, color: str) -> str | None:
    history = json.loads(history_json)
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
        return to_data_uri(figure)


def plot_history(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    colors: dict[str, str],
    marks: dict[str, Sequence[bool]] | None = None,
) -> str:
    """Each model's accuracy run after run (gaps where a run did not train that model).

    `marks` flags, per model and run, the points to ring: the runs whose model became the champion.
    """
    x = np.arange(len(labels))
    with new_figure(7.2, 2.8) as figure:
        ax = figure.add_subplot()
        for name, values in series.items():
            y = np.array([100 * v if v is not None else np.nan for v in values], dtype=float)
            ax.plot(x, y, "-o", ms=4, color=colors[name], label=escape_mathtext(name))
            flags = np.asarray((marks or {}).get(name) or [False] * len(values), dtype=bool)
            if flags.any():
                ax.plot(x[flags], y[flags], "o", ms=10, mfc="none", mec=colors[name], mew=1.6)
        if marks and any(any(flags) for flags in marks.values()):
            ax.plot([], [], "o", ms=10, mfc="none", mec="#39424e", mew=1.6, label="new champion")
        crowded = len(labels) > 4
        ax.set_xticks(
            x,
            [escape_mathtext(label) for label in labels],
            rotation=30 if crowded else 0,
            ha="right" if crowded else "center",
            fontsize=7,
        )
        ax.set_ylabel("test accuracy (%)")
        ax.yaxis.grid(True)
        ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(series) + 1, 4))
        return to_data_uri(figure)


def digit_png(image: np.ndarray) -> str:
    """A digit as a tiny PNG, dark ink on white like the page; the browser scales it up pixel-sharp."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    imsave(buffer, np.asarray(image), cmap="gray_r", vmin=0, vmax=255, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
