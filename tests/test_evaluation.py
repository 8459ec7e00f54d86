"""Metrics by hand on tiny examples, and evaluate_model against Keras's own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.modeling.evaluation import confusion_matrix, evaluate_model, log_softmax, per_class_metrics
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.training import configure_tensorflow, train_model
from tests.synthetic_digits import make_split


def test_confusion_matrix_rows_are_true_labels() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), n_classes=4)
    expected = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm, expected)
    assert np.issubdtype(cm.dtype, np.integer)


def test_per_class_metrics_by_hand() -> None:
    # class 0: TP 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 1/2
    # class 1: TP 1, predicted 2, true 1 -> P 1/2, R 1,   F1 2/3
    # class 2: TP 2, predicted 2, true 3 -> P 1,   R 2/3, F1 4/5
    # class 3: never true, never predicted -> 0/0 everywhere, defined as 0.0
    cm = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    metrics = per_class_metrics(cm)
    np.testing.assert_allclose(metrics["precision"], [0.5, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(metrics["recall"], [0.5, 1.0, 2 / 3, 0.0])
    np.testing.assert_allclose(metrics["f1"], [0.5, 2 / 3, 0.8, 0.0])
    assert metrics["support"] == [2, 1, 3, 0]


def test_never_predicted_class_has_zero_precision_not_nan() -> None:
    metrics = per_class_metrics(confusion_matrix(np.array([0, 1]), np.array([0, 0]), n_classes=2))
    assert metrics["precision"] == [0.5, 0.0] and metrics["recall"] == [1.0, 0.0] and metrics["f1"][1] == 0.0


def test_log_softmax_matches_the_definition() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    expected_first = np.log(np.exp(logits[0]) / np.exp(logits[0]).sum())
    np.testing.assert_allclose(log_softmax(logits)[0], expected_first)
    assert np.isfinite(log_softmax(logits)).all()


@pytest.fixture(scope="module")
def data() -> tuple[Split, Split]:
    configure_tensorflow(threads=None, deterministic=True)
    return make_split(600, seed=0), make_split(300, seed=1)


@pytest.mark.parametrize("name", ["ann_no_hidden", "ann_hidden_100", "cnn"])
def test_evaluation_matches_keras(name: str, data: tuple[Split, Split]) -> None:
    train, test = data
    model = train_model(name, TrainConfig(profile="test", epochs=1, batch_size=50), train, seed=0).model
    keras_loss, keras_accuracy = model.evaluate(test.images, test.labels, batch_size=1024, verbose=0)
    evaluation = evaluate_model(model, test)
    assert evaluation.loss == pytest.approx(keras_loss, abs=1e-5)
    assert evaluation.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert evaluation.confusion.sum() == test.rows
    assert np.trace(evaluation.confusion) == round(evaluation.accuracy * test.rows)
    predictions = evaluation.predictions
    assert list(predictions.columns) == ["row_id", "label", "predicted", "confidence"]
    np.testing.assert_array_equal(predictions["row_id"], np.arange(test.rows))
    np.testing.assert_array_equal(predictions["label"], test.labels)
    np.testing.assert_array_equal(predictions["predicted"], model.predict(test.images, verbose=0).argmax(axis=1))
    assert ((predictions["confidence"] > 0.1) & (predictions["confidence"] <= 1.0)).all()


def test_cnn_confidence_is_its_softmax_output(data: tuple[Split, Split]) -> None:
    train, test = data
    model = train_model("cnn", TrainConfig(profile="test", epochs=1, batch_size=50), train, seed=0).model
    top = model.predict(test.images, verbose=0).max(axis=1)
    np.testing.assert_allclose(evaluate_model(model, test).predictions["confidence"], top, rtol=1e-5)


def test_bfloat16_model_matches_keras(data: tuple[Split, Split]) -> None:
    train, test = data
    config = TrainConfig(profile="test", epochs=1, batch_size=50, precision="mixed_bfloat16")
    model = train_model("cnn", config, train, seed=0).model
    keras_loss, _ = model.evaluate(test.images, test.labels, batch_size=1024, verbose=0)
    assert evaluate_model(model, test).loss == pytest.approx(keras_loss, abs=1e-5)
