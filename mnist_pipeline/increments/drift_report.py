"""The gate's verdict as people see it: the `mnist-increment` artifact's markdown and the drift picture (PNG, in
the report's chart style, inlined compact since the Prefect database stores every artifact).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

from mnist_pipeline.increments.drift import (
    FEATURES,
    N_CLASSES,
    DriftReport,
    DriftTest,
    choose_reference_rows,
    count_labels,
    measure_shapes,
)
from mnist_pipeline.markdown import Markdown, escape_markdown, markdown_table
from mnist_pipeline.report import charts
from mnist_pipeline.report.artifact_content import markdown_image
from mnist_pipeline.validation.results import CheckResult

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

SAMPLE_ROWS, SAMPLE_COLS = 4, 8
WIDTH_INCHES = 7.2
BATCH_COLOR = "#2f6db5"
FLAGGED_COLOR = "#b83a2e"
BINS = 30


def draw_drift_picture(
    batch_images: np.ndarray,
    reference_images: np.ndarray,
    batch_labels: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
    report: DriftReport | None = None,
) -> bytes:
    """A PNG: each shape statistic's histogram over the training data's, the label shares, sample batch images;
    what `report` flagged has a red title. The reference is sampled as `compute_drift` samples it."""
    rows = choose_reference_rows(len(reference_images))
    reference_images = np.asarray(reference_images)[rows]
    batch_shapes, reference_shapes = measure_shapes(batch_images), measure_shapes(reference_images)
    flagged = {test.name for test in report.tests if test.flagged} if report is not None else set()
    with charts.new_figure(WIDTH_INCHES, 6.4) as figure:
        grid = figure.add_gridspec(3, 4, height_ratios=(1, 1, 1.5))
        for index, (name, title) in enumerate(FEATURES.items()):
            ax = figure.add_subplot(grid[index // 4, index % 4])
            _draw_histogram(ax, batch_shapes[name], reference_shapes[name])
            _set_title(ax, title, name in flagged)
        ax = figure.add_subplot(grid[1, 3])
        if batch_labels is not None and reference_labels is not None:
            _draw_label_shares(ax, batch_labels, np.asarray(reference_labels)[rows], "label_distribution" in flagged)
        else:
            ax.set_axis_off()
        ax = figure.add_subplot(grid[2, :])
        _draw_samples(ax, np.asarray(batch_images), batch_labels)
        figure.legend(handles=_legend_handles(), loc="outside upper right", ncols=3, fontsize=8)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=charts.MAX_WIDTH / WIDTH_INCHES, facecolor="white")
    return buffer.getvalue()


def _legend_handles() -> list[Artist]:
    """The batch's line, the training data's bars, and what a red title means."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], color=BATCH_COLOR, linewidth=1.4, label="this batch"),
        Patch(facecolor=charts.SEED_COLOR, label="training data"),
        Patch(facecolor=FLAGGED_COLOR, label="red title: drift flagged"),
    ]


def _set_title(ax: Axes, title: str, flagged: bool) -> None:
    """A panel's title, red and bold when its test flagged."""
    ax.set_title(title, **({"color": FLAGGED_COLOR, "fontweight": "bold"} if flagged else {}))


def _draw_histogram(ax: Axes, batch: np.ndarray, reference: np.ndarray) -> None:
    """Both samples on shared bins: integer-aligned for integer statistics (box sizes), else BINS between the
    0.5 and 99.5 percentiles of both, outliers counted in the end bins. An empty sample draws nothing."""
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    both = np.concatenate([batch, reference])
    if not len(both):
        return
    low, high = (float(value) for value in np.percentile(both, [0.5, 99.5]))
    if np.all(both == np.round(both)):
        edges = np.arange(low - 0.5, high + 1.5)
    else:
        edges = np.linspace(low, high if high > low else low + 1, BINS + 1)
    styles = (
        (reference, {"color": charts.SEED_COLOR}),
        (batch, {"histtype": "step", "color": BATCH_COLOR, "linewidth": 1.4}),
    )
    for values, style in styles:
        if len(values):
            ax.hist(np.clip(values, edges[0], edges[-1]), bins=edges, density=True, **style)


def _draw_label_shares(ax: Axes, batch: np.ndarray, reference: np.ndarray, flagged: bool) -> None:
    digits = np.arange(N_CLASSES)
    for offset, labels, color in ((-0.2, reference, charts.SEED_COLOR), (0.2, batch, BATCH_COLOR)):
        counts = count_labels(labels)
        ax.bar(digits + offset, 100 * counts / max(counts.sum(), 1), width=0.4, color=color)
    ax.set_xticks(digits)
    ax.tick_params(labelsize=7)
    _set_title(ax, "labels (% of images)", flagged)


def _draw_samples(ax: Axes, images: np.ndarray, labels: np.ndarray | None) -> None:
    """SAMPLE_ROWS x SAMPLE_COLS batch images as one tiled picture (one image, not one axes per digit: fast),
    dark ink on white like the report's digits, each with its label in the corner when given."""
    count = min(len(images), SAMPLE_ROWS * SAMPLE_COLS)
    picks = np.linspace(0, len(images) - 1, count).round().astype(int) if count else np.zeros(0, dtype=int)
    gap, side = 2, 28
    tile = side + gap
    canvas = np.zeros((SAMPLE_ROWS * tile - gap, SAMPLE_COLS * tile - gap), dtype=np.uint8)
    for slot, index in enumerate(picks):
        top, left = divmod(slot, SAMPLE_COLS)
        canvas[top * tile : top * tile + side, left * tile : left * tile + side] = images[index]
        if labels is not None:
            ax.text(left * tile + 1, top * tile + 1, str(labels[index]), va="top", fontsize=6, color=BATCH_COLOR)
    for top in range(1, SAMPLE_ROWS):  # gaps drawn as light lines between the tiles
        canvas[top * tile - gap : top * tile, :] = 40
    for left in range(1, SAMPLE_COLS):
        canvas[:, left * tile - gap : left * tile] = 40
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(f"{count} of the batch's {len(images)} images, evenly spread")
    ax.set_axis_off()


def render_increment_markdown(
    batch_id: str, accepted: bool, checks: list[CheckResult], reasons: list[str], drift_markdown: str | None
) -> str:
    """Markdown for one gated batch; every text from the batch (names, messages) is escaped."""
    verdict = "accepted" if accepted else "refused"
    lines = [f"# Batch {escape_markdown(batch_id)}: {verdict}", ""]
    if reasons:
        lines += ["Refused because:", ""] + [f"- {escape_markdown(reason)}" for reason in reasons] + [""]
    lines += ["## Blocking checks", ""]
    lines += markdown_table(
        ["check", "result"], [(check.message, "pass" if check.success else Markdown("**fail**")) for check in checks]
    )
    if drift_markdown:
        lines += ["", drift_markdown]
    return "\n".join(lines) + "\n"


def render_drift_markdown(report: DriftReport, batch_id: str, picture_png: bytes, note: str | None = None) -> str:
    """The `mnist-increment` artifact's drift section: the verdict, every test as a table row, the picture."""
    flagged = [test for test in report.tests if test.flagged]
    verdict = f"**drift flagged in {len(flagged)} of {len(report.tests)} tests**" if flagged else "no drift flagged"
    skipped: dict[str, list[str]] = {}
    for test in report.tests:
        if test.skipped is not None:
            skipped.setdefault(test.skipped, []).append(test.name)
    rows = [
        (
            test.name,
            test.method,
            _format_number(test.statistic),
            _describe_rule(test),
            _format_number(test.p_value),
            Markdown("**yes**") if test.flagged else "no",
            test.detail,
        )
        for test in report.tests
        if test.skipped is None
    ]
    uri = charts.PNG_PREFIX + base64.b64encode(picture_png).decode("ascii")
    lines = [f"# Drift report, batch {escape_markdown(batch_id)}: {verdict}", ""]
    if note:
        lines += [f"Note: {escape_markdown(note)}", ""]
    lines += [
        f"{report.batch_rows} batch images against {report.reference_rows} training images (a seeded sample when "
        "there are more). The report is informative: `--drift block` makes a flagged report refuse the batch.",
        "",
        *markdown_table(
            ("test", "method", "statistic", "flags when", "p-value", "flagged", "batch vs reference"),
            rows,
            align="llrlrll",
        ),
        "",  # a line right after a table would be one more row
        *[
            line
            for reason, names in skipped.items()
            for line in (f"Skipped ({escape_markdown(reason)}): {', '.join(names)}.", "")
        ],
        markdown_image("drift: batch histograms over the training data, sample images", uri),
    ]
    return "\n".join(lines)


def _describe_rule(test: DriftTest) -> str:
    return f"p < {test.threshold:.3g}" if test.kind == "p_value" else f"distance > {test.threshold:.3g}"


def _format_number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
