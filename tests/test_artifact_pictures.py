"""The picture artifacts and the accuracy trend, rendered from sample metrics (no Prefect): content, size, escaping."""

from __future__ import annotations

import base64
import copy
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.report import charts
from mnist_pipeline.report.artifact_content import (
    render_accuracy_markdown,
    render_model_markdown,
    render_promotion_markdown,
    render_report_location,
    render_summary_markdown,
    render_trend_markdown,
    render_validation_markdown,
)
from mnist_pipeline.report.charts import MAX_WIDTH, compact_png
from mnist_pipeline.report.view import assign_colors, build_run_rows
from tests.markdown_view import RenderedMarkdown
from tests.report_samples import make_metrics, make_mistakes, with_champion

IMAGE = re.compile(r"!\[([^\]]*)\]\((data:image/png;base64,[A-Za-z0-9+/=]+)\)")


def decode(data_uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))


@pytest.fixture(scope="module")
def run() -> dict:
    return with_champion(make_metrics())


def test_accuracy_picture_shows_run_seed_and_champion(run: dict) -> None:
    markdown = render_accuracy_markdown(run)
    images = IMAGE.findall(markdown)
    assert len(images) == 1
    pixels = np.asarray(decode(images[0][1]).convert("RGB"))
    # The champion bar's grey (charts.CHAMPION_COLOR) is drawn: with_champion gives cnn a champion.
    champion = tuple(int(charts.CHAMPION_COLOR[i : i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(pixels.astype(int) - champion).sum(axis=2) < 12).sum() > 200


def test_model_page_has_both_confusion_matrices_curves_and_mistakes(run: dict) -> None:
    mistakes = make_mistakes(run, limit=12)
    markdown = render_model_markdown("cnn", run["models"]["cnn"], "#2ca02c", mistakes["cnn"])
    alts = [alt for alt, _ in IMAGE.findall(markdown)]
    assert alts == [
        "cnn confusion matrix, counts",
        "cnn confusion matrix, row-normalised",
        "cnn training curves",
        "cnn reliability diagram and risk-coverage curve",
        "cnn most confident mistakes",
    ]
    errors = 10000 - int(np.trace(np.asarray(run["models"]["cnn"]["confusion_matrix"])))
    assert f"{errors} of 10000 wrong" in markdown


def test_model_page_without_mistakes_or_history_has_only_the_matrices(run: dict) -> None:
    # An evaluation recorded before calibration has no reliability or risk-coverage data either.
    model = {**run["models"]["ann_no_hidden"], "history": {}, "calibration": {}, "selective": {}}
    assert len(IMAGE.findall(render_model_markdown("ann_no_hidden", model, "#1f77b4", []))) == 2


def test_pictures_fit_the_ui_width_and_a_small_budget(run: dict) -> None:
    colors = assign_colors(list(run["models"]))
    mistakes = make_mistakes(run, limit=12)
    pages = [render_accuracy_markdown(run)]
    pages += [render_model_markdown(name, run["models"][name], colors[name], mistakes[name]) for name in run["models"]]
    for _, uri in (image for page in pages for image in IMAGE.findall(page)):
        image = decode(uri)
        assert image.width <= MAX_WIDTH and image.mode == "P"
    # Three models' pages (five pictures each) plus the accuracy chart: well below the 1 MB a run may add to the
    # Prefect database.
    assert sum(len(page) for page in pages) < 400_000


def test_compact_png_keeps_small_pictures_at_their_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "#ff7f0e").save(buffer, format="PNG")
    small = compact_png("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    image = decode(small)
    assert image.size == (200, 100)
    assert image.convert("RGB").getpixel((10, 10)) == (0xFF, 0x7F, 0x0E)


def test_trend_marks_promotions_and_lists_newest_first(run: dict) -> None:
    older = [
        make_metrics(f"run-2025-05-{day:02d}-120000", f"2025-05-{day:02d}T12:00:00+00:00", shift=-0.001 * day)
        for day in (3, 2, 1)
    ]
    markdown = render_trend_markdown(older, run, limit=3)
    assert len(IMAGE.findall(markdown)) == 1
    page = RenderedMarkdown(markdown)
    table = page.rows[1:]
    assert [row[0] for row in table] == [run["run"]["name"], "run-2025-05-01-120000", "run-2025-05-02-120000"]
    # Only this run's cnn (the last column) was promoted, its star in bold.
    assert table[0][-1].endswith(" ★") and sum(cell.count("★") for row in table for cell in row) == 1
    assert page.html.count("<strong>★</strong>") == 1


def test_trend_escapes_names_and_tolerates_odd_history(run: dict) -> None:
    odd = {"run": {"name": "x|<b>y</b>"}, "models": {"cnn": {"test_accuracy": "high"}}, "champion": []}
    names, rows = build_run_rows([odd, run], run)
    assert names == list(run["models"])
    assert rows[0]["accuracies"] == [None, None, None] and rows[0]["promoted"] == [False, False, False]
    markdown = render_trend_markdown([odd], run)
    # run, data (none recorded), new images (none before versions grew), test images, three models
    page = RenderedMarkdown(markdown)
    assert page.rows[-1] == ["x|<b>y</b>", "-", "0", "-", "-", "-", "-"] and "b" not in page.tag_names()


def test_report_location_names_the_file_and_how_to_get_a_link(run: dict) -> None:
    path = Path("/srv/reports/runs/run-1/report.html")
    page = RenderedMarkdown(render_report_location(path, "http://127.0.0.1:4201"))
    assert f"The report is the file {path} (open it in a browser" in page.text
    assert "No report server answered at http://127.0.0.1:4201" in page.text
    assert "make server" in page.text and "file://" not in page.text and "a" not in page.tag_names()


def test_a_run_on_another_test_split_has_no_seed_study_figures(run: dict) -> None:
    other = copy.deepcopy(run)
    other["data"]["test_sha256"] = "0" * 64
    summary = RenderedMarkdown(render_summary_markdown(other, "/tmp/r.html")).text
    assert not [figure for figure in ("92.54 %", "97.41 %", "98.66 %") if figure in summary]
    assert "92.54 %" in RenderedMarkdown(render_summary_markdown(run, "/tmp/r.html")).text
    assert "seed study" not in render_accuracy_markdown(other)
    assert "seed study" in render_accuracy_markdown(run)


def test_summary_links_the_served_report(run: dict) -> None:
    url = "http://127.0.0.1:4201/runs/run-1/report.html"
    served = RenderedMarkdown(render_summary_markdown(run, url))
    assert [attrs for tag, attrs in served.tags if tag == "a"] == [{"href": url}]
    assert served.text.rstrip().endswith(f"Report: \n{url}")
    local = RenderedMarkdown(render_summary_markdown(run, "/tmp/r/report.html"))
    assert local.text.rstrip().endswith("Report: /tmp/r/report.html") and "a" not in local.tag_names()


def test_validation_and_promotion_tables_keep_data_inside_their_cells() -> None:
    hostile = "a|b\n<img src=x>"
    shown = "a|b <img src=x>"
    check = {"split": "test", "expectation": hostile, "success": False, "observed": hostile, "message": hostile}
    validation = RenderedMarkdown(render_validation_markdown({"success": False, "checks": [check]}))
    decisions = {hostile: {"promoted": True, "champion_run": hostile, "reason": hostile}}
    promotion = RenderedMarkdown(render_promotion_markdown(hostile, decisions))
    assert validation.rows == [["split", "check", "result", "observed"], ["test", shown, "FAIL", shown]]
    assert promotion.rows[1] == [shown, "yes", f"run {shown}", "-", "-", shown]
    for page in (validation, promotion):
        assert "img" not in page.tag_names() and len({len(row) for row in page.rows}) == 1
    assert "FAILED: training blocked" in validation.text and f"\n{shown}\n" in validation.text
    assert validation.html.count("<strong>") == 2 and promotion.html.count("<strong>yes</strong>") == 1
