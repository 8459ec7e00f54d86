"""The increment gate's drift report: drawn digits (Pillow's font, jittered, MNIST-style) as the training data, a
held-out drawing from the same generator as the honest batch, and batches shifted on purpose."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from scipy import ndimage, stats

from mnist_pipeline.increments.drift import (
    FEATURES,
    LARGE_BATCH,
    REFERENCE_SAMPLE,
    DriftReport,
    champion_probabilities,
    choose_reference_rows,
    compute_drift,
    measure_shapes,
)
from mnist_pipeline.increments.drift_report import draw_drift_picture, render_drift_markdown
from mnist_pipeline.modeling.serving import Engine
from mnist_pipeline.report import charts
from tests.markdown_view import RenderedMarkdown
from tests.predict_support import draw_digits

CHAMPION_TESTS = ["champion_confidence", *[f"champion_prob_{k}" for k in range(10)]]


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    return draw_digits(3000, seed=100)


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    return draw_digits(300, seed=7)


@pytest.fixture(scope="module")
def large_held_out() -> tuple[np.ndarray, np.ndarray]:
    return draw_digits(LARGE_BATCH + 1, seed=8)


def make_probs(labels: np.ndarray, sharpness: float, seed: int) -> np.ndarray:
    """Softmax outputs of a stand-in champion: logits favour the true label by `sharpness` (lower: less sure)."""
    logits = np.random.default_rng(seed).normal(size=(len(labels), 10))
    logits[np.arange(len(labels)), labels] += sharpness
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def by_name(report: DriftReport) -> dict[str, object]:
    return {test.name: test for test in report.tests}


def flagged_names(report: DriftReport) -> set[str]:
    return {test.name for test in report.tests if test.flagged}


def test_a_held_out_sample_of_the_same_digits_passes(reference, held_out) -> None:
    images, labels = held_out
    assert not any((images == image).all(axis=(1, 2)).any() for image in reference[0][:50])  # not the reference
    report = compute_drift(
        images, labels, *reference, make_probs(labels, 5.0, seed=1), make_probs(reference[1], 5.0, seed=2)
    )
    assert not report.flagged, report.lines()
    assert report.lines() == []
    assert all(test.skipped is None and test.p_value is not None for test in report.tests)
    assert len(report.tests) == 1 + len(FEATURES) + 11


def thicken(images: np.ndarray) -> np.ndarray:
    cross = ndimage.generate_binary_structure(2, 1)
    return np.stack([ndimage.grey_dilation(image, footprint=cross) for image in images])


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ("thicker strokes", {"stroke_width", "ink_fraction"}),
        ("centre moved right", {"centre_col"}),
        ("all one label", {"label_distribution"}),
        ("unsure champion", {"champion_confidence"}),
    ],
)
def test_a_batch_shifted_on_purpose_is_flagged(reference, held_out, shift: str, expected: set[str]) -> None:
    images, labels = held_out
    probs = make_probs(labels, 5.0, seed=1)
    if shift == "thicker strokes":
        images = thicken(images)
    elif shift == "centre moved right":
        images = np.roll(images, 2, axis=2)
    elif shift == "all one label":
        labels = np.full_like(labels, 3)
    else:
        probs = make_probs(labels, 1.0, seed=1)
    report = compute_drift(images, labels, *reference, probs, make_probs(reference[1], 5.0, seed=2))
    assert report.flagged
    assert expected <= flagged_names(report)
    assert len(report.lines()) == len(flagged_names(report))
    assert all(line.split(":")[0] in flagged_names(report) for line in report.lines())


def test_the_tests_switch_from_hypothesis_tests_to_distances_above_1000_images(reference, large_held_out) -> None:
    images, labels = large_held_out
    for rows, label_method, feature_method in [
        (LARGE_BATCH, "chi-square", "two-sample KS"),
        (LARGE_BATCH + 1, "Jensen-Shannon", "Wasserstein"),
    ]:
        report = compute_drift(images[:rows], labels[:rows], *reference)
        tests = by_name(report)
        assert tests["label_distribution"].method.startswith(label_method)
        assert all(tests[name].method.startswith(feature_method) for name in FEATURES)
        assert not report.flagged, report.lines()
    large = by_name(report)
    assert all(large[name].p_value is None and large[name].threshold == 0.1 for name in FEATURES)
    assert large["label_distribution"].threshold == 0.1
    batch, training = measure_shapes(images)["stroke_width"], measure_shapes(reference[0])["stroke_width"]
    distance = stats.wasserstein_distance(batch, training) / training.std()
    assert large["stroke_width"].statistic == pytest.approx(distance)


def test_a_large_shifted_batch_is_flagged_by_the_distances(reference, large_held_out) -> None:
    images, labels = large_held_out
    report = compute_drift(thicken(images), np.full_like(labels, 3), *reference)
    assert {"label_distribution", "stroke_width", "ink_fraction"} <= flagged_names(report)
    assert by_name(report)["label_distribution"].statistic > 0.1


def test_the_per_class_tests_are_bonferroni_corrected(reference, held_out) -> None:
    """Class 3's probability shifted just enough for 0.005 <= p < 0.05 (the first `count` images' raised to
    0.5, one image more each try): it must not flag at 0.05 / 10."""
    _, labels = held_out
    reference_probs = make_probs(reference[1], 5.0, seed=2)
    for count in range(100):
        probs = make_probs(labels, 5.0, seed=1)
        probs[:count, 3] = np.maximum(probs[:count, 3], 0.5)
        p_value = stats.ks_2samp(probs[:, 3], reference_probs[:, 3]).pvalue
        if 0.005 <= p_value < 0.05:
            break
    else:
        pytest.fail("no shift of class 3 gave 0.005 <= p < 0.05")
    report = compute_drift(*held_out, *reference, probs, reference_probs)
    tests = by_name(report)
    assert tests["champion_prob_3"].p_value == pytest.approx(p_value)
    assert not tests["champion_prob_3"].flagged
    assert all(tests[f"champion_prob_{k}"].threshold == pytest.approx(0.005) for k in range(10))
    assert tests["champion_confidence"].threshold == 0.05
    assert all(test.flagged == (test.p_value < test.threshold) for test in report.tests)


def test_without_a_champion_its_tests_are_skipped_not_flagged(reference) -> None:
    images, labels = reference[0][:200], np.full(200, 7)
    report = compute_drift(images, labels, *reference)
    tests = by_name(report)
    assert all(tests[name].skipped == "no champion" and not tests[name].flagged for name in CHAMPION_TESTS)
    assert report.flagged  # the label test still runs
    with pytest.raises(ValueError, match="give both or neither"):
        compute_drift(images, labels, *reference, batch_probs=make_probs(labels, 5.0, seed=1))


def test_an_empty_batch_skips_every_test(reference) -> None:
    report = compute_drift(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), *reference)
    assert not report.flagged
    assert {test.skipped for test in report.tests} == {"empty batch", "no champion"}


def test_the_report_is_plain_json(reference, held_out) -> None:
    images, labels = held_out
    report = compute_drift(
        thicken(images), labels, *reference, make_probs(labels, 1.0, 1), make_probs(reference[1], 5.0, 2)
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["flagged"] is True
    assert data["batch_rows"] == 300 and data["reference_rows"] == 3000
    assert [test["name"] for test in data["tests"]] == [test.name for test in report.tests]
    assert {type(test["statistic"]) for test in data["tests"]} == {float}


def test_a_large_reference_is_sampled_the_same_way_every_time(held_out) -> None:
    rows = choose_reference_rows(3 * REFERENCE_SAMPLE)
    assert len(rows) == len(np.unique(rows)) == REFERENCE_SAMPLE
    assert (np.diff(rows) > 0).all() and rows[-1] < 3 * REFERENCE_SAMPLE
    assert (rows == choose_reference_rows(3 * REFERENCE_SAMPLE)).all()
    assert (choose_reference_rows(10) == np.arange(10)).all()
    images, labels = held_out
    big = np.resize(images, (REFERENCE_SAMPLE + 1, 28, 28)), np.resize(labels, REFERENCE_SAMPLE + 1)
    assert compute_drift(images[:50], labels[:50], *big).reference_rows == REFERENCE_SAMPLE


def test_shape_statistics_of_a_drawn_bar() -> None:
    """A 12x3 bar of full ink: its box, its centre and a stroke width of exactly 3 (upright and lying)."""
    image = np.zeros((28, 28), np.uint8)
    image[8:20, 10:13] = 255
    shapes = measure_shapes(np.stack([image, image.T, np.zeros_like(image)]))
    assert shapes["ink_fraction"][0] == pytest.approx(36 / 784)
    assert shapes["mean_intensity"][0] == pytest.approx(36 / 784)
    assert (shapes["bbox_height"][:2], shapes["bbox_width"][:2]) == (pytest.approx([12, 3]), pytest.approx([3, 12]))
    assert (shapes["centre_row"][0], shapes["centre_col"][0]) == (pytest.approx(13.5), pytest.approx(11.0))
    assert shapes["stroke_width"][:2] == pytest.approx([3.0, 3.0])
    assert [shapes[name][2] for name in ("ink_fraction", "bbox_height", "stroke_width")] == [0, 0, 0]


def write_linear_model(path: Path) -> Path:
    """A real ONNX classifier without TensorFlow: uint8 (n, 28, 28) -> logits = ink-weighted sums per class."""
    weights = np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32) / 255
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", ["pixels", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["n", 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])],
        [
            helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 784]),
            helper.make_tensor("weights", TensorProto.FLOAT, weights.shape, weights.flatten()),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_champion_probabilities_come_from_the_engine(tmp_path, held_out) -> None:
    images, _ = held_out
    assert champion_probabilities(None, images) is None
    probs = champion_probabilities(Engine(write_linear_model(tmp_path / "linear.onnx")), images)
    assert probs.shape == (300, 10)
    assert probs.sum(axis=1) == pytest.approx(np.ones(300))
    assert len(np.unique(probs.argmax(axis=1))) > 1


HOSTILE = "b-1|<script>alert(1)</script>\n# [x](javascript:alert(1)) `code` *em* ![i](http://x/y.png)"


def test_the_markdown_escapes_what_comes_from_data(reference, held_out) -> None:
    images, labels = held_out
    report = compute_drift(thicken(images), labels, *reference)
    picture = draw_drift_picture(thicken(images), reference[0], labels, reference[1], report=report)
    markdown = render_drift_markdown(report, HOSTILE, picture, note=HOSTILE)
    page = RenderedMarkdown(markdown)
    shown = " ".join(HOSTILE.split())
    # The pipeline's own markup only: one heading, the data as text in it and in the note, one picture (inline).
    assert page.tag_names() <= {"h1", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "code", "img"}
    assert [attrs["src"][:22] for tag, attrs in page.tags if tag == "img"] == ["data:image/png;base64,"]
    assert f"\nDrift report, batch {shown}: " in page.text
    assert f"\nNote: {shown}\n" in page.text
    assert [tag for tag, _ in page.tags].count("h1") == 1
    rows = page.rows
    assert len(rows) == 1 + sum(test.skipped is None for test in report.tests)
    assert sum(row[5] == "yes" for row in rows[1:]) == len(report.lines())
    assert page.html.count("<strong>yes</strong>") == len(report.lines())
    assert "Skipped (no champion): champion_confidence" in page.text


def test_the_picture_is_a_small_png(reference, held_out) -> None:
    images, labels = held_out
    empty = draw_drift_picture(images[:0], reference[0], labels[:0], reference[1])
    picture = draw_drift_picture(images[:5], reference[0])  # fewer images than the grid, no labels
    for png in (empty, picture):
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
    with Image.open(io.BytesIO(picture)) as image:
        assert image.format == "PNG" and image.width <= charts.MAX_WIDTH
    markdown = render_drift_markdown(compute_drift(images, labels, *reference), "b-1", picture)
    uri = markdown.split("](", 1)[1].rstrip(")")
    assert uri.startswith(charts.PNG_PREFIX)
    assert len(picture) < 300_000 and len(markdown) < 200_000
