"""The HTML report: sections, numbers equal to metrics.json, escaping, no network loads, history, safe writes."""

from __future__ import annotations

import base64
import copy
import json
import logging
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.report import Mistake, render_index, render_report, select_mistakes, write_report
from mnist_pipeline.report.publish import load_history
from mnist_pipeline.report.render import format_seconds, format_time
from mnist_pipeline.runs.names import RunNameError
from tests.report_samples import make_metrics, make_mistakes, with_champion

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
INLINE = {"a", "b", "code", "em", "span", "strong"}
URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background", "cite"}


class Page(HTMLParser):
    """Every start tag with its attributes, and the text inside each element that has an id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self.open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.tags.append((tag, attributes))
        self.separate(tag)
        if tag not in VOID:
            self.open.append(attributes.get("id"))
            if attributes.get("id"):
                self.texts.setdefault(attributes["id"], [])

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.open:
            self.open.pop()
        self.separate(tag)

    def separate(self, tag: str) -> None:
        """Block and cell boundaries become spaces in the collected text; inline tags do not."""
        if tag not in INLINE:
            self.handle_data(" ")

    def handle_data(self, data: str) -> None:
        for element_id in self.open:
            if element_id:
                self.texts[element_id].append(data)

    def text(self, element_id: str) -> str:
        return " ".join("".join(self.texts[element_id]).split())

    def find(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [
            attributes
            for name, attributes in self.tags
            if name == tag and all(attributes.get(key.replace("_", "-")) == value for key, value in wanted.items())
        ]


def keep_models(metrics: dict[str, Any], names: list[str]) -> dict[str, Any]:
    result = copy.deepcopy(metrics)
    result["models"] = {name: result["models"][name] for name in names}
    return result


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f} %"


@pytest.fixture(scope="module")
def metrics() -> dict[str, Any]:
    return with_champion(make_metrics())


@pytest.fixture(scope="module")
def mistakes(metrics: dict[str, Any]) -> dict[str, list[Mistake]]:
    return make_mistakes(metrics, limit=6)


@pytest.fixture(scope="module")
def earlier() -> list[dict[str, Any]]:
    return [
        make_metrics("run-2025-05-28-120000", "2025-05-28T12:00:00+00:00", shift=-0.003),
        make_metrics("run-2025-05-30-120000", "2025-05-30T12:00:00+00:00", shift=0.001),
    ]


@pytest.fixture(scope="module")
def html(metrics: dict[str, Any], mistakes: dict[str, list[Mistake]], earlier: list[dict[str, Any]]) -> str:
    return render_report(metrics, mistakes, earlier)


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    return Page(html)


@pytest.fixture(scope="module")
def variant(metrics: dict[str, Any]) -> Page:
    """One render for the less common cases: a model without reference, a failed check, no champion, no history,
    and a flow-run URL that is not http(s)."""
    run = keep_models(metrics, ["cnn"])
    run["models"] = {"resnet_tiny": run["models"]["cnn"]}
    del run["champion"]
    run["run"]["flow_run_url"] = "javascript:alert(1)"
    run["validation"]["success"] = False
    run["validation"]["checks"][0].update(success=False, observed={"min": -1, "max": 9}, message="labels below 0")
    return Page(render_report(run, {}, []))


def test_every_section_present(page: Page, metrics: dict[str, Any]) -> None:
    ids = set(page.texts)
    sections = {"accuracy", "confusion", "per-class", "training", "mistakes", "data", "provenance", "history"}
    assert sections | {"champion", "validation", "duplicates", "stages", "versions"} <= ids
    for name in metrics["models"]:
        assert {f"confusion-{name}", f"per-class-{name}", f"training-{name}", f"mistakes-{name}"} <= ids


def test_accuracy_table_equals_metrics(page: Page, metrics: dict[str, Any]) -> None:
    seed = {"ann_no_hidden": "92.54 %", "ann_hidden_100": "97.41 %", "cnn": "98.66 %"}
    rows = [attributes["data-model"] for tag, attributes in page.tags if tag == "tr" and "data-model" in attributes]
    assert rows[: len(metrics["models"])] == list(metrics["models"])
    table = page.text("accuracy-table")
    for name, model in metrics["models"].items():
        row = table[table.index(name) :]
        assert row.startswith(f"{name} {percent(model['test_accuracy'])} {seed[name]} ")
        assert f"{model['test_loss']:.4f}" in row
        assert format_seconds(model["train_seconds"]) in row
        assert f"{model['params']:,}" in row
    assert "4 min 41 s" in table
    assert "24.3 s" in table
    assert page.find("img", id="accuracy-chart")


def test_cached_and_delta_shown(page: Page, metrics: dict[str, Any]) -> None:
    table = page.text("accuracy-table")
    cnn = metrics["models"]["cnn"]["test_accuracy"]
    assert f"{100 * (cnn - 0.9866):+.2f}" in table
    cached_row = table[table.index("ann_no_hidden") : table.index("ann_hidden_100")]
    assert "cached" in cached_row
    assert table.count("this run") == 2


def test_one_heatmap_per_model(page: Page, metrics: dict[str, Any]) -> None:
    for name in metrics["models"]:
        counts = page.find("img", data_kind="counts", data_model=name)
        normalised = page.find("img", data_kind="normalised", data_model=name)
        assert len(counts) == 1
        assert len(normalised) == 1
        for image in (counts[0], normalised[0]):
            prefix = "data:image/png;base64,"
            assert image["src"].startswith(prefix)
            assert base64.b64decode(image["src"][len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"


def test_most_confused_pairs_listed(page: Page, metrics: dict[str, Any]) -> None:
    for name, model in metrics["models"].items():
        matrix = np.array(model["confusion_matrix"])
        np.fill_diagonal(matrix, -1)
        true, predicted = np.unravel_index(matrix.argmax(), matrix.shape)
        assert f"{true} → {predicted}: {matrix[true, predicted]} images" in page.text(f"confusion-{name}")


def test_per_class_numbers_equal_metrics(page: Page, metrics: dict[str, Any]) -> None:
    for name, model in metrics["models"].items():
        text = page.text(f"per-class-{name}")
        for key in ("precision", "recall", "f1"):
            for value in model["per_class"][key]:
                assert percent(value) in text
        assert all(f"{support:,}" in text for support in model["per_class"]["support"])


def test_training_curves_per_model(page: Page, metrics: dict[str, Any]) -> None:
    for name in metrics["models"]:
        assert len(page.find("img", data_model=name, **{"class": "chart curves"})) == 1


def test_gallery_shows_each_mistake(page: Page, mistakes: dict[str, list[Mistake]]) -> None:
    for name, chosen in mistakes.items():
        text = page.text(f"mistakes-{name}")
        for mistake in chosen:
            assert f"{mistake.label} → {mistake.predicted} {percent(mistake.confidence)} #{mistake.row_id}" in text
        alts = [tag for tag in page.find("img") if tag.get("alt", "").startswith("test image")]
        assert len(alts) == sum(len(m) for m in mistakes.values())


def test_data_and_validation_section(page: Page, metrics: dict[str, Any]) -> None:
    data = page.text("data")
    assert metrics["data"]["fingerprint"] in data
    assert metrics["data"]["source"] in data
    assert "60,000" in data
    assert "10,000" in data
    for check in metrics["validation"]["checks"]:
        assert check["expectation"] in data
    assert "train test 3" in page.text("duplicates")
    assert "passed" in page.text("validation")


def test_provenance_section(page: Page, metrics: dict[str, Any]) -> None:
    text = page.text("provenance")
    run = metrics["run"]
    for value in (run["name"], run["flow_run_id"], run["git_commit"], run["task_runner"], run["profile"]):
        assert value in text
    assert all(f"{package} {version}" in text for package, version in run["versions"].items())
    stages = page.text("stages")
    assert "train 4 min 50 s" in stages
    assert "ingest 1.9 s" in stages
    assert page.find("a", id="flow-run-link", href=run["flow_run_url"])


def test_champion_section(page: Page) -> None:
    text = page.text("champion")
    assert "promoted" in text
    assert "champion kept" in text
    assert "98.30 %" in text


def test_no_network_resource_loads(html: str, page: Page, metrics: dict[str, Any]) -> None:
    allowed = metrics["run"]["flow_run_url"]
    for tag, attributes in page.tags:
        for key, value in attributes.items():
            if key in URL_ATTRIBUTES and value.strip().lower().startswith(("http:", "https:", "//")):
                assert (tag, key, value) == ("a", "href", allowed)
    assert not [tag for tag, _ in page.tags if tag in {"script", "link", "iframe", "object", "embed", "base"}]
    assert "url(" not in html
    assert "@import" not in html


def test_unknown_model_has_no_reference(variant: Page) -> None:
    table = variant.text("accuracy-table")
    assert table.startswith("model accuracy seed study")
    assert "resnet_tiny" in table
    assert "98.66 %" not in table
    assert "\u2013" in table


def test_a_run_on_another_test_split_is_not_set_beside_the_seed_study() -> None:
    """The seed study's figures are MNIST test accuracies: a run on another dataset shows none of them, anywhere."""
    runs = []
    for name, started, profile in (("run-seed", "2025-05-01", "seed"), ("run-now", "2025-05-02", "default")):
        run = with_profile(make_metrics(name, f"{started}T12:00:00+00:00"), profile)
        run["data"]["test_sha256"] = "0" * 64
        runs.append(run)
    other = Page(render_report(runs[1], {}, runs[:1]))
    assert other.find("table", id="profiles-table")
    for table in ("accuracy-table", "profiles-table"):
        text = other.text(table)
        assert not [figure for figure in ("92.54 %", "97.41 %", "98.66 %") if figure in text], table
        assert "seed study" not in text and "Δ" not in text, table
    assert "no-seed-study" in other.texts
    mnist = make_metrics("run-mnist", "2025-05-03T12:00:00+00:00")
    assert "no-seed-study" not in Page(render_report(mnist, {}, [])).texts
    limited = with_profile(mnist, "default", test_limit=200)
    assert "98.66 %" not in Page(render_report(limited, {}, [])).text("accuracy-table")


def test_failed_check_is_flagged(variant: Page) -> None:
    text = variant.text("validation")
    assert "failed" in text
    assert "labels below 0" in text
    assert '{"min": -1, "max": 9}' in text


def test_champion_section_absent_without_decisions(variant: Page) -> None:
    assert "champion" not in variant.texts


def test_non_http_flow_run_url_is_not_a_link(variant: Page) -> None:
    assert not variant.find("a", id="flow-run-link")
    assert not [attributes for _, attributes in variant.tags if "javascript:" in attributes.get("href", "")]


def test_first_run_has_no_history_chart(variant: Page) -> None:
    assert not variant.find("img", id="history-chart")
    assert "first run" in variant.text("history")


def test_strings_from_data_stay_text(metrics: dict[str, Any]) -> None:
    hostile = keep_models(metrics, ["cnn"])
    hostile["models"] = {f"cnn{HOSTILE}$x$": hostile["models"]["cnn"]}
    hostile["run"]["name"] = f"run{HOSTILE}"
    hostile["run"]["parameters"]["source"] = HOSTILE
    hostile["data"]["source"] = HOSTILE
    hostile["validation"]["checks"][0].update(success=False, message=HOSTILE, observed=HOSTILE)
    hostile["champion"] = {HOSTILE: {"promoted": False, "reason": HOSTILE, "challenger_accuracy": 0.9}}
    history = [make_metrics(f"old{HOSTILE}", "2025-05-01T00:00:00+00:00")]
    mistakes = {f"cnn{HOSTILE}$x$": make_mistakes(keep_models(metrics, ["cnn"]), limit=1)["cnn"]}
    html = render_report(hostile, mistakes, history)
    assert HOSTILE not in html
    assert html.count(ESCAPED) >= 8
    assert not Page(html).find("script")
    index = render_index([hostile, *history])
    assert HOSTILE not in index
    assert ESCAPED in index
    assert not [a for a in Page(index).find("a") if "script" in a.get("href", "")]


def test_other_class_counts_are_not_hard_coded(metrics: dict[str, Any]) -> None:
    three = keep_models(metrics, ["cnn"])
    model = three["models"]["cnn"]
    model["confusion_matrix"] = [[50, 2, 0], [1, 45, 4], [0, 3, 47]]
    model["per_class"] = {"precision": [0.98, 0.9, 0.92], "recall": [0.96, 0.9, 0.94], "f1": [0.97, 0.9, 0.93]}
    page = Page(render_report(three, {}, []))
    rows = page.text("per-class-cnn")
    assert "92.00 %" in rows
    assert "1 → 2: 4 images (8.00 % of the 1s)" in page.text("confusion-cnn")


def test_history_across_runs(page: Page, earlier: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
    table = page.text("history-table")
    names = [run["run"]["name"] for run in [*earlier, metrics]]
    positions = [table.index(name) for name in names]
    assert positions == sorted(positions)
    for run in [*earlier, metrics]:
        assert all(percent(model["test_accuracy"]) in table for model in run["models"].values())
    assert page.find("img", id="history-chart")


def test_index_lists_runs_newest_first(earlier: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
    runs = [earlier[1], metrics, earlier[0]]
    page = Page(render_index(runs))
    rows = [attributes["data-run"] for _, attributes in page.tags if "data-run" in attributes]
    assert rows == [metrics["run"]["name"], earlier[1]["run"]["name"], earlier[0]["run"]["name"]]
    links = [a["href"] for a in page.find("a") if a["href"].startswith("runs/")]
    assert links == [f"runs/{name}/report.html" for name in rows]
    table = page.text("runs-table")
    assert metrics["data"]["fingerprint"][:12] in table
    assert percent(metrics["models"]["cnn"]["test_accuracy"]) in table


def test_write_report_publishes_every_file(tmp_path: Path, metrics: dict[str, Any]) -> None:
    run = keep_models(metrics, ["ann_no_hidden"])
    path = write_report(tmp_path, run, {})
    assert path == tmp_path / "runs" / run["run"]["name"] / "report.html"
    assert json.loads((path.parent / "metrics.json").read_text()) == run
    assert (tmp_path / "latest.html").read_text() == path.read_text()
    assert run["run"]["name"] in (tmp_path / "index.html").read_text()
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_report_builds_history_from_reports_dir(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for day in ("05-28", "05-30"):
        write_report(tmp_path, keep_models(make_metrics(f"run-{day}", f"2025-{day}T12:00:00+00:00"), ["cnn"]), {})
    broken = tmp_path / "runs" / "broken" / "metrics.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    current = keep_models(make_metrics("run-06-01", "2025-06-01T12:00:00+00:00"), ["cnn"])
    with caplog.at_level(logging.WARNING):
        path = write_report(tmp_path, current, {})
    assert any("broken" in record.getMessage() for record in caplog.records)
    table = Page(path.read_text()).text("history-table")
    assert table.index("run-05-28") < table.index("run-05-30") < table.index("run-06-01")
    index = Page((tmp_path / "index.html").read_text())
    assert [attributes["data-run"] for _, attributes in index.tags if "data-run" in attributes] == [
        "run-06-01",
        "run-05-30",
        "run-05-28",
    ]


def test_history_excludes_the_current_run(tmp_path: Path) -> None:
    for name in ("run-a", "run-b"):
        run = keep_models(make_metrics(name), ["cnn"])
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "metrics.json").write_text(json.dumps(run))
    assert [run["run"]["name"] for run in load_history(tmp_path, exclude="run-a")] == ["run-b"]


def test_failing_render_leaves_previous_reports_intact(tmp_path: Path) -> None:
    write_report(tmp_path, keep_models(make_metrics("run-good"), ["cnn"]), {})
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    bad = keep_models(make_metrics("run-bad"), ["cnn"])
    del bad["models"]["cnn"]["test_loss"]
    with pytest.raises(KeyError):
        write_report(tmp_path, bad, {})
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before
    assert not (tmp_path / "runs" / "run-bad").exists()


@pytest.mark.parametrize("name", ["../escape", "..", "a/b", "/tmp/abs", ".hidden", "-rf", "", "a\\b", "x\0y", 7])
def test_run_name_cannot_leave_runs_dir(tmp_path: Path, name: Any) -> None:
    reports = tmp_path / "reports"
    run = keep_models(make_metrics(), ["cnn"])
    run["run"]["name"] = name
    with pytest.raises(RunNameError, match="run name"):
        write_report(reports, run, {})
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_select_mistakes_most_confident_first() -> None:
    images = np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2)
    predictions = pd.DataFrame(
        {
            "row_id": [0, 1, 2, 3, 4, 5],
            "label": [1, 2, 3, 4, 5, 6],
            "predicted": [1, 7, 3, 9, 0, 8],
            "confidence": [0.99, 0.6, 0.98, 0.9, 0.6, 0.7],
        }
    )
    chosen = select_mistakes(predictions, images, limit=3)
    assert [(m.row_id, m.label, m.predicted) for m in chosen] == [(3, 4, 9), (5, 6, 8), (1, 2, 7)]
    assert chosen[0].confidence == pytest.approx(0.9)
    np.testing.assert_array_equal(chosen[0].image, images[3])
    assert len(select_mistakes(predictions, images, limit=50)) == 4
    assert select_mistakes(predictions, images, limit=0) == []


def test_select_mistakes_rejects_bad_predictions() -> None:
    images = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(DataFormatError, match="confidence"):
        select_mistakes(pd.DataFrame({"row_id": [0], "label": [1], "predicted": [2]}), images, limit=5)
    out_of_range = pd.DataFrame({"row_id": [5], "label": [1], "predicted": [2], "confidence": [0.5]})
    with pytest.raises(DataFormatError, match="row ids below 2"):
        select_mistakes(out_of_range, images, limit=5)


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = "import sys, mnist_pipeline.report; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "\u2013"), (0.04, "0.0 s"), (59.94, "59.9 s"), (281.4, "4 min 41 s"), (3725, "1 h 02 min")],
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


def test_format_time_shows_utc() -> None:
    assert format_time("2025-06-01T14:03:09+02:00") == "2025-06-01 12:03:09 UTC"
    assert format_time("not a date") == "not a date"


def with_profile(run: dict[str, Any], profile: str, **parameters: Any) -> dict[str, Any]:
    run = copy.deepcopy(run)
    run["run"]["profile"] = profile
    run["run"]["parameters"].update(profile=profile, **parameters)
    return run


def test_profiles_side_by_side_take_the_newest_full_run_of_each_profile() -> None:
    seed = with_profile(make_metrics("run-seed", "2025-05-01T12:00:00+00:00", shift=-0.004), "seed")
    old_best = with_profile(make_metrics("run-best-old", "2025-05-02T12:00:00+00:00", shift=0.001), "best")
    best = with_profile(make_metrics("run-best", "2025-05-03T12:00:00+00:00", shift=0.003), "best")
    smoke = with_profile(
        make_metrics("run-best-smoke", "2025-05-04T12:00:00+00:00", shift=-0.05), "best", test_limit=200
    )
    other_data = with_profile(make_metrics("run-seed-fashion", "2025-05-05T12:00:00+00:00", shift=-0.2), "seed")
    other_data["data"]["fingerprint"] = "0" * 64
    current = make_metrics("run-now", "2025-05-06T12:00:00+00:00")
    page = Page(render_report(current, {}, [seed, old_best, best, smoke, other_data]))
    table = page.text("profiles-table")
    for name in ("run-seed", "run-best", "run-now"):
        assert name in table
    for name in ("run-best-old", "run-best-smoke", "run-seed-fashion"):
        assert name not in table
    for run in (seed, best, current):
        assert percent(run["models"]["cnn"]["test_accuracy"]) in table


def test_profiles_table_needs_two_profiles() -> None:
    current = make_metrics("run-now", "2025-05-06T12:00:00+00:00")
    earlier = make_metrics("run-earlier", "2025-05-05T12:00:00+00:00", shift=0.01)
    assert Page(render_report(current, {}, [earlier])).find("table", id="profiles-table") == []


def test_charts_are_drawn_once_and_kept_by_their_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mnist_pipeline.report import charts

    matrix = np.diag([9, 8, 7])
    with charts.cache_charts_in(tmp_path):
        first = charts.plot_confusion(matrix, normalise=False)
        curves = charts.plot_training({"loss": [0.5, 0.3], "accuracy": [0.8, 0.9]}, "#1f77b4")
    assert len(list(tmp_path.iterdir())) == 2

    def refuse(*_: Any) -> str:
        raise AssertionError("drawn again although its inputs are unchanged")

    monkeypatch.setattr(charts, "_draw_confusion", refuse)
    monkeypatch.setattr(charts, "_draw_training", refuse)
    with charts.cache_charts_in(tmp_path):
        assert charts.plot_confusion(matrix, normalise=False) == first
        assert charts.plot_training({"loss": [0.5, 0.3], "accuracy": [0.8, 0.9]}, "#1f77b4") == curves
        with pytest.raises(AssertionError, match="drawn again"):
            charts.plot_confusion(np.diag([9, 8, 6]), normalise=False)


@pytest.mark.e2e  # renders whole reports, charts included, several times
def test_charts_drawn_after_each_evaluation_leave_the_report_nothing_to_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: dict[str, Any], mistakes: dict[str, list[Mistake]]
) -> None:
    from mnist_pipeline.report import artifact_content, charts
    from mnist_pipeline.report.view import assign_colors

    colors = assign_colors(list(metrics["models"]))
    with charts.cache_charts_in(tmp_path):
        for name, model in metrics["models"].items():
            trust = (model.get("calibration", {}), model.get("selective", {}))
            charts.draw_model_charts(
                np.asarray(model["confusion_matrix"]), model["history"], colors[name], mistakes[name], trust
            )
    drawn = set(tmp_path.iterdir())
    # 4 pictures per model and the cnn's reliability one, each with its compact copy for the UI.
    assert len(drawn) == 8 * len(metrics["models"]) + 2

    def refuse(*_: Any) -> str:
        raise AssertionError("a per-model chart was drawn again by the report")

    for function in ("_draw_confusion", "_draw_training", "_draw_mistakes", "_draw_trust", "_compact_png"):
        monkeypatch.setattr(charts, function, refuse)
    with charts.cache_charts_in(tmp_path):
        html = render_report(metrics, mistakes, [])
        pages = [
            artifact_content.render_model_markdown(name, model, colors[name], mistakes[name])
            for name, model in metrics["models"].items()
        ]
        heatmaps = [charts.plot_confusion(np.asarray(m["confusion_matrix"]), True) for m in metrics["models"].values()]
    added = set(tmp_path.iterdir()) - drawn  # the report's own accuracy chart joins the cache; no model's chart does
    assert added and all(path.name.startswith("accuracy-") for path in added)
    assert all(heatmap in html for heatmap in heatmaps)
    assert [page.count("data:image/png;base64,") for page in pages] == [
        5 if name == "cnn" else 4 for name in metrics["models"]
    ]


def test_figures_are_drawn_one_at_a_time_each_with_the_whole_style() -> None:
    """matplotlib's style is process-wide: a second thread's figure waits, and then gets the full style."""
    import threading

    import matplotlib

    from mnist_pipeline.report import charts

    inside: list[float] = []
    entered = threading.Event()

    def draw_in_another_thread() -> None:
        with charts.new_figure(1.0, 1.0):
            entered.set()
            inside.append(matplotlib.rcParams["font.size"])

    with charts.new_figure(1.0, 1.0):
        other = threading.Thread(target=draw_in_another_thread)
        other.start()
        assert not entered.wait(0.5)  # blocked while this figure is being drawn
    other.join(timeout=30)
    assert entered.is_set() and inside == [charts.STYLE["font.size"]]
    assert matplotlib.rcParams["font.size"] != charts.STYLE["font.size"]  # the style does not leak out


def test_charts_no_run_used_for_a_month_are_pruned(tmp_path: Path) -> None:
    import os
    import time

    from mnist_pipeline.report import charts

    with charts.cache_charts_in(tmp_path):
        used = charts.plot_confusion(np.diag([9, 8, 7]), normalise=False)
        charts.plot_confusion(np.diag([5, 5, 5]), normalise=False)
    month_ago = time.time() - 31 * 86400
    for path in tmp_path.iterdir():
        os.utime(path, (month_ago, month_ago))
    with charts.cache_charts_in(tmp_path):
        assert charts.plot_confusion(np.diag([9, 8, 7]), normalise=False) == used  # a hit renews it
    removed = charts.prune_chart_cache(tmp_path)
    assert len(removed) == 1 and not removed[0].exists()
    (kept,) = tmp_path.iterdir()
    assert kept.read_text() == used
