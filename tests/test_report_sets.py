"""The report, the trend and the promotion artifact show both evaluation sets and the data each run trained on."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mnist_pipeline.report import render_report
from mnist_pipeline.report.artifact_content import render_promotion_markdown, render_trend_markdown
from mnist_pipeline.report.render import DASH
from mnist_pipeline.report.view import build_run_rows
from tests.markdown_view import RenderedMarkdown
from tests.report_samples import make_metrics
from tests.test_report import Page, percent

INCREMENTS = ["b-20261201T090000-0a1b2c3d", "b-20261201T100000-4e5f6a7b"]


def with_new_set(metrics: dict[str, Any], rows: int, fingerprint: str, accuracy: dict[str, float]) -> dict[str, Any]:
    """The run as it is after increments were accepted: scored on `new` too, on a grown version."""
    grown = copy.deepcopy(metrics)
    grown["data"].update(fingerprint=fingerprint, increments=INCREMENTS, new_rows=rows, new_sha256="e" * 64)
    for name, model in grown["models"].items():
        test = {key: model[key] for key in ("confusion_matrix", "per_class")}
        new = {"accuracy": accuracy[name], "rows": rows, "confusion_matrix": [[rows]], "per_class": {}}
        model["eval"] = {"test": {"accuracy": model["test_accuracy"], "rows": 10000, **test}, "new": new}
    grown["champion"] = {
        "cnn": {
            "promoted": False,
            "considered": True,
            "reason": "loses 0.31 points on test, more than the allowed 0.20 (...)",
            "champion_run": "run-2025-05-30-120000",
            "challenger_accuracy": grown["models"]["cnn"]["test_accuracy"],
            "champion_accuracy": grown["models"]["cnn"]["test_accuracy"] + 0.0031,
            "accuracy_gain": -0.0031,
            "challenger_new_accuracy": accuracy["cnn"],
            "champion_new_accuracy": 0.6125,
            "new_accuracy_gain": accuracy["cnn"] - 0.6125,
            "new_rows": rows,
        }
    }
    return grown


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    """An old run (recorded before versions grew), then this run on a grown version."""
    old = make_metrics("run-2025-05-30-120000", "2025-05-30T12:00:00+00:00", shift=0.001)
    accuracy = {"ann_no_hidden": 0.7125, "ann_hidden_100": 0.8375, "cnn": 0.9125}
    grown = with_new_set(make_metrics(), 80, "7" * 64, accuracy)
    return [old, grown]


def test_the_report_shows_both_sets_and_the_data_of_each_run(runs: list[dict[str, Any]]) -> None:
    old, grown = runs
    page = Page(render_report(grown, {}, [old]))

    accuracy = page.text("accuracy-table")
    for name, model in grown["models"].items():
        assert f"{name} {percent(model['test_accuracy'])} {percent(model['eval']['new']['accuracy'])} " in accuracy
    data = page.text("data")
    assert "new images (new set) 80" in data and f"increments 2: {', '.join(INCREMENTS)}" in data

    history = page.text("history-table")
    # run, started, data version, increments, new images, then test and new accuracy per model
    old_cells = " ".join(f"{percent(model['test_accuracy'])} {DASH}" for model in old["models"].values())
    assert f"{old['data']['fingerprint'][:12]} 0 0 {old_cells}" in history  # no increments, no new set
    new_cells = " ".join(
        f"{percent(model['test_accuracy'])} {percent(model['eval']['new']['accuracy'])}"
        for model in grown["models"].values()
    )
    assert f"{'7' * 12} 2 80 {new_cells}" in history
    assert page.find("img", id="history-chart")

    champion = page.text("champion-table")
    assert "challenger new champion new Δ new challenger test champion test Δ test" in champion
    assert "91.25 % 61.25 % +30.00" in champion and "-0.31" in champion


def test_the_trend_has_both_sets_the_data_version_and_the_new_images(runs: list[dict[str, Any]]) -> None:
    old, grown = runs

    markdown = render_trend_markdown([old], grown)

    header, newest, oldest = RenderedMarkdown(markdown).rows
    assert header == [
        "run",
        "data",
        "new images",
        "test images",
        *[f"{name} {split}" for name in ("ann_no_hidden", "ann_hidden_100", "cnn") for split in ("test", "new")],
    ]
    assert newest[:4] == [grown["run"]["name"], "7" * 12, "80", "10000"]
    assert newest[-2:] == [percent(grown["models"]["cnn"]["test_accuracy"]), "91.25 %"]
    assert oldest[:4] == [old["run"]["name"], old["data"]["fingerprint"][:12], "0", "10000"]
    assert oldest[-2:] == [percent(old["models"]["cnn"]["test_accuracy"]), "-"]
    assert f"<code>{'7' * 12}</code>" in RenderedMarkdown(markdown).html


def test_the_promotion_artifact_shows_both_sets(runs: list[dict[str, Any]]) -> None:
    grown = runs[1]
    test = grown["models"]["cnn"]["test_accuracy"]

    markdown = render_promotion_markdown(grown["run"]["name"], grown["champion"])

    (row,) = [row for row in RenderedMarkdown(markdown).rows if row[0] == "cnn"]
    assert row[3:5] == ["91.25 % vs 61.25 % (+30.00)", f"{percent(test)} vs {percent(test + 0.0031)} (-0.31)"]
    assert "loses 0.31 points on test" in row[5]


def test_the_history_counts_every_image_of_the_increments_when_recorded(runs: list[dict[str, Any]]) -> None:
    """A version's increments brought images to train on and to score on: `new images` counts both."""
    old, grown = runs
    grown = copy.deepcopy(grown)
    grown["data"]["increment_rows"] = {"train": 320, "test": 80}

    _, rows = build_run_rows([old, grown], grown)

    assert [row["new_images"] for row in rows] == [0, 400]
    assert [row["new_rows"] for row in rows] == [0, 80]
    newest = RenderedMarkdown(render_trend_markdown([old], grown)).rows[1]
    assert newest[:3] == [grown["run"]["name"], "7" * 12, "400"]
    page = Page(render_report(grown, {}, [old]))
    assert "of them from increments 320 training, 80 new" in page.text("data")
    assert f"{'7' * 12} 2 400 " in page.text("history-table")
