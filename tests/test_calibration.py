"""Calibration and abstention by hand and by simulation: the temperature fit, ECE, the threshold for a target
error and its guarantee on held-out data, and a model's calibration fitted from its train split alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binomtest

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import write_split
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling.calibration import (
    ANSWER_NONE,
    MIN_POPULATION,
    Calibration,
    Selective,
    bound_error,
    calibration_file,
    estimate_threshold,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    load_calibration,
    save_calibration,
    summarise_reliability,
)
from mnist_pipeline.modeling.jobs import TrainingJob, calibrate_job
from mnist_pipeline.modeling.profiles import TrainConfig
from tests.app_support import write_constant_model
from tests.test_runs import make_trained


def sample_labels(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels drawn from softmax(logits): a model that is calibrated by construction."""
    probabilities = softmax(logits, axis=1)
    return (probabilities.cumsum(axis=1) > rng.random((len(logits), 1))).argmax(axis=1)


def test_temperature_scaling_recovers_the_overconfidence_it_is_fitted_to_undo() -> None:
    rng = np.random.default_rng(0)
    honest = rng.normal(0, 3, size=(20_000, 10))
    labels = sample_labels(honest, rng)
    assert fit_temperature(honest * 2.5, labels) == pytest.approx(2.5, rel=0.05)
    calibration = fit_calibration(honest * 2.5, labels)
    assert calibration.held_out_rows == 20_000
    assert calibration.ece_after < 0.02 < calibration.ece_before
    assert list(calibration.held_out_confidence) == sorted(calibration.held_out_confidence, reverse=True)


def test_ece_and_the_reliability_points_by_hand() -> None:
    confidence = np.array([0.95, 0.95, 0.65, 0.65])
    correct = np.array([True, False, True, True])
    # Two bins: 0.95 with accuracy 0.5 (gap 0.45), 0.65 with accuracy 1.0 (gap 0.35), each half of the images.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.4)
    assert summarise_reliability(confidence, correct) == {
        "confidence": [0.65, 0.95],
        "accuracy": [1.0, 0.5],
        "count": [2, 2],
    }


def test_the_threshold_is_where_the_estimated_error_reaches_the_target() -> None:
    confidence = np.array([1.0, 0.99, 0.98, 0.9, 0.5])
    # Mean of 1 - c over the top k: 0, 0.005, 0.01, 0.0325, 0.126.
    assert estimate_threshold(confidence, 0.006) == 0.99
    assert estimate_threshold(confidence, 0.011) == 0.98
    assert estimate_threshold(np.array([0.6, 0.7]), 0.005) == ANSWER_NONE > 1.0
    alone = Calibration(1.0, 0, None, None, ())
    assert alone.threshold(0.005) == pytest.approx(0.995)


def test_a_population_unlike_the_held_out_images_raises_the_threshold_a_small_batch_does_not() -> None:
    held_out = Calibration(1.0, 1000, 0.0, 0.0, tuple([0.999] * 900 + [0.9] * 100))
    base = held_out.threshold(0.02)
    unfamiliar = np.concatenate([np.full(30, 0.999), np.linspace(0.97, 0.90, 40)])
    assert held_out.threshold(0.02, unfamiliar[: MIN_POPULATION - 1]) == base
    assert held_out.threshold(0.02, unfamiliar) > base
    assert held_out.threshold(0.02, np.full(MIN_POPULATION, 0.9999)) == base


def test_the_threshold_holds_its_target_on_held_out_data_it_was_not_chosen_on() -> None:
    """A calibrated model (right with probability = its confidence): a threshold chosen on 3 000 held-out images
    keeps the error among answered fresh images at the target, and the stated 95 % bound (scored on the images the
    threshold was chosen on, as evaluation does) covers the true error in at least 95 % of repetitions."""
    rng = np.random.default_rng(7)
    target, covered, errors = 0.01, 0, []
    for _ in range(200):
        held_out = 1 - rng.beta(0.3, 12, size=3000)
        threshold = estimate_threshold(held_out, target)
        chosen = Selective.score(held_out, rng.random(3000) < held_out, threshold, target)
        fresh = 1 - rng.beta(0.3, 12, size=50_000)
        answered = fresh >= threshold
        true_error = float((1 - fresh[answered]).mean())
        errors.append(true_error)
        covered += true_error <= chosen.error_bound
    assert np.mean(errors) == pytest.approx(target, rel=0.1)
    assert covered >= 0.95 * 200


def test_the_stated_bound_is_the_exact_binomial_one() -> None:
    assert bound_error(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))
    exact = binomtest(7, 2900, alternative="less").proportion_ci(confidence_level=0.95, method="exact").high
    assert bound_error(7, 2900) == pytest.approx(exact)
    assert bound_error(0, 0) == 1.0
    assert bound_error(7, 2900, choices=12) > bound_error(7, 2900)


def test_a_calibration_round_trips_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    calibration = Calibration(1.25, 3, 0.03, 0.01, (0.99, 0.9, 0.5))
    path = tmp_path / "k.calibration.json"
    save_calibration(calibration, path)
    assert load_calibration(path) == calibration
    assert load_calibration(tmp_path / "none.calibration.json") is None
    path.write_text(
        json.dumps(
            {
                "temperature": 1000.0,
                "held_out_rows": 0,
                "ece_before": None,
                "ece_after": None,
                "held_out_confidence": [],
            }
        )
    )
    with pytest.raises(DataFormatError, match=f"{path}: expected a temperature in 0.05..20, found 1000.0"):
        load_calibration(path)
    path.write_text("{")
    with pytest.raises(DataFormatError, match=f"{path}: expected a model calibration"):
        load_calibration(path)


def test_a_model_is_calibrated_on_its_train_split_held_out_rows_and_never_reads_test(tmp_path: Path) -> None:
    """The data dir has no test split at all: calibration must not need it. The fit is saved beside the model and
    reused for a reused model."""
    layout = DataLayout(tmp_path / "data")
    images = np.zeros((400, 28, 28), dtype=np.uint8)
    labels = np.where(np.arange(400) % 4 == 0, 4, 3)  # the constant model says 3; a quarter of these are 4s
    layout.parquet.mkdir(parents=True)
    write_split(layout.split_file("train"), Split(images=images, labels=labels))
    config = TrainConfig(profile="default", epochs=1, validation_fraction=0.25)
    job = TrainingJob("cnn", "k", "e", None, config, None, 42, None, None, (28, 28), None)
    write_constant_model(layout.model_file(job.model, job.key).with_suffix(".onnx"), 3)
    assert not layout.split_file("test").exists()

    calibration = calibrate_job(layout, job, make_trained(reused=False))
    assert calibration.held_out_rows == 100
    assert calibration.temperature > 1.0  # the constant model's 0.95 for a class right about 75 % of the time
    assert load_calibration(calibration_file(layout.model_file(job.model, job.key))) == calibration
    layout.split_file("train").unlink()
    assert calibrate_job(layout, job, make_trained(reused=True)) == calibration
