"""Names from data in every kind of Prefect UI artifact come out inert (no remote image, link, tag or markup from
them) and readable (shown as they are: no entity, no stray backslash, one table cell each)."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.increments.drift import DriftReport, DriftTest
from mnist_pipeline.increments.drift_report import render_drift_markdown, render_increment_markdown
from mnist_pipeline.markdown import Markdown, escape_markdown, markdown_table
from mnist_pipeline.predict.answer import Answer, Prediction, Predictions
from mnist_pipeline.predict.batch import render_batch_markdown
from mnist_pipeline.predict.model_choice import ModelChoice
from mnist_pipeline.report.artifact_content import (
    render_accuracy_markdown,
    render_model_markdown,
    render_promotion_markdown,
    render_report_location,
    render_summary_markdown,
    render_trend_markdown,
    render_validation_markdown,
)
from mnist_pipeline.validation.results import CheckResult
from tests.markdown_view import HOSTILE_NAMES, RenderedMarkdown
from tests.report_samples import make_metrics, with_champion

# What the pipeline's own markup renders to; a tag outside these came from data.
OWN_TAGS = {"h1", "h2", "p", "ul", "li", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "img", "br"}
RUN = with_champion(make_metrics())


def tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def drift_markdown(name: str) -> str:
    test = DriftTest("ink", "Kolmogorov-Smirnov", "p_value", 0.01, 0.4, 0.001, flagged=True, detail=name)
    return render_drift_markdown(DriftReport(10, 100, [test]), name, tiny_png(), note=name)


def validation_markdown(name: str) -> str:
    check = {"split": "test", "expectation": name, "success": False, "observed": name, "message": name}
    return render_validation_markdown({"success": False, "checks": [check]})


def promotion_markdown(name: str) -> str:
    return render_promotion_markdown(name, {name: {"promoted": True, "champion_run": name, "reason": name}})


def summary_markdown(name: str) -> str:
    metrics = copy.deepcopy(RUN)
    metrics["run"]["name"] = metrics["data"]["source"] = name
    return render_summary_markdown(metrics, "/tmp/report.html")


def trend_markdown(name: str) -> str:
    old = {"run": {"name": name}, "models": {"cnn": {"test_accuracy": 0.9}}, "data": {"fingerprint": "<b>|x`"}}
    return render_trend_markdown([old], RUN)


def accuracy_markdown(name: str) -> str:
    return render_accuracy_markdown({**RUN, "run": {**RUN["run"], "name": name}})


def batch_markdown(name: str) -> str:
    choice = ModelChoice("cnn", "0123456789abcdef01234567", Path("/m/cnn.keras"), name, "champion", Path("/d"))
    predictions = Predictions([Prediction(name, 7, 0.5, ((7, 0.5), (1, 0.3), (2, 0.2)), unsure=True)], 0.9, 0.005)
    result = Answer(choice, predictions, [(name, name)], np.zeros((1, 28, 28), dtype=np.uint8))
    return render_batch_markdown(result, Path("/out/predictions.parquet"), name)


def increment_markdown(name: str) -> str:
    check = CheckResult("batch", "expect_name", None, False, name, None, name)
    return render_increment_markdown(name, False, [check], [name], drift_markdown(name))


# Each artifact kind, and whether the name lands in a table cell of its own.
ARTIFACTS: dict[str, tuple[Callable[[str], str], bool]] = {
    "validation": (validation_markdown, True),
    "promotion": (promotion_markdown, True),
    "summary": (summary_markdown, False),
    "trend": (trend_markdown, True),
    "report location": (lambda name: render_report_location(Path("/srv/report.html"), name), False),
    "accuracy": (accuracy_markdown, False),
    "model page": (lambda name: render_model_markdown(name, RUN["models"]["cnn"], "#2ca02c", []), False),
    "batch predict": (batch_markdown, True),
    "increment": (increment_markdown, True),
    "drift": (drift_markdown, True),
}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("kind", ARTIFACTS)
def test_names_from_data_are_inert_and_readable(kind: str, name: str) -> None:
    render, in_a_cell = ARTIFACTS[kind]
    page = RenderedMarkdown(render(name))
    assert page.tag_names() <= OWN_TAGS, page.html
    assert all(attrs.get("src", "").startswith("data:image/png;base64,") for tag, attrs in page.tags if tag == "img")
    assert name in page.text, page.html
    rest = page.text.replace(name, "")
    assert not [mark for mark in ("&#", "&amp;", "&lt;", "\\") if mark in rest], page.html
    if in_a_cell:
        assert any(name in row for row in page.rows), page.rows
        assert all(len({len(row) for row in table}) == 1 for table in page.tables), page.tables


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_report_path_is_shown_as_it_is(name: str) -> None:
    path = Path("/srv", name, "report.html")  # a path has no `//`: shown as Path writes it
    page = RenderedMarkdown(render_report_location(path, "http://127.0.0.1:4201"))
    assert f"The report is the file {path} (open it" in page.text and page.tag_names() <= OWN_TAGS
    page = RenderedMarkdown(render_summary_markdown(RUN, str(path)))
    assert page.text.rstrip().endswith(f"Report: {path}") and page.tag_names() <= OWN_TAGS


def test_table_cells_are_escaped_unless_the_pipeline_wrote_them_as_markdown() -> None:
    table = markdown_table(("name", "result"), [("*x*\nnext|cell", Markdown("**fail**"))], align="lr")
    assert table == ["| name | result |", "| --- | ---: |", "| \\*x\\* next\\|cell | **fail** |"]
    page = RenderedMarkdown("\n".join(table))
    assert page.rows == [["name", "result"], ["*x* next|cell", "fail"]]
    assert "strong" in page.tag_names() and "em" not in page.tag_names()


def test_escaping_keeps_letters_digits_and_spaces_and_makes_one_line() -> None:
    assert escape_markdown("run 7\n\tb") == "run 7 b"
    assert escape_markdown("a\\b") == "a\\\\b"
    assert escape_markdown(12.5) == "12\\.5"
