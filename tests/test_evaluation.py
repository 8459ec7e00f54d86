"""Metrics by hand on tiny examples, evaluate_model against Keras's own numbers, and evaluation = predict."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import write_split
from mnist_pipeline.modeling.evaluation import (
    confusion_matrix,
    evaluate_model,
    evaluate_saved_model,
    log_softmax,
    per_class_metrics,
)
from mnist_pipeline.modeling.model_files import to_engine
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.training import configure_tensorflow, train_model
from mnist_pipeline.predict.answer import answer
from mnist_pipeline.predict.model_choice import choose_model
from tests.predict_support import draw_digits, train_champion, write_styled
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
    evaluation = evaluate_model(to_engine(model), test)
    assert evaluation.loss == pytest.approx(keras_loss, abs=1e-5)
    assert evaluation.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert evaluation.confusion.sum() == test.rows
    assert np.trace(evaluation.confusion) == round(evaluation.accuracy * test.rows)
    predictions = evaluation.predictions
    assert list(predictions.columns) == ["row_id", "label", "predicted", "confidence", "uncalibrated_confidence"]
    np.testing.assert_array_equal(predictions["row_id"], np.arange(test.rows))
    np.testing.assert_array_equal(predictions["label"], test.labels)
    np.testing.assert_array_equal(predictions["predicted"], model.predict(test.images, verbose=0).argmax(axis=1))
    assert ((predictions["confidence"] > 0.1) & (predictions["confidence"] <= 1.0)).all()


def test_cnn_confidence_is_its_softmax_output(data: tuple[Split, Split]) -> None:
    train, test = data
    model = train_model("cnn", TrainConfig(profile="test", epochs=1, batch_size=50), train, seed=0).model
    top = model.predict(test.images, verbose=0).max(axis=1)
    np.testing.assert_allclose(evaluate_model(to_engine(model), test).predictions["confidence"], top, rtol=1e-5)


def test_bfloat16_model_is_scored_in_float32(data: tuple[Split, Split]) -> None:
    """ONNX export needs float32: a bfloat16-trained model is served as its float32 weights computed in float32,
    so its scores are Keras's for a float32 copy, and close to (not equal to) those computed in bfloat16."""
    from mnist_pipeline.modeling.architectures import build_model

    train, test = data
    config = TrainConfig(profile="test", epochs=1, batch_size=50, precision="mixed_bfloat16")
    model = train_model("cnn", config, train, seed=0).model
    float32_copy = build_model("cnn", dtype_policy="float32")
    float32_copy.set_weights(model.get_weights())
    float32_copy.compile(loss=model.loss, metrics=["accuracy"])
    keras_loss, _ = float32_copy.evaluate(test.images, test.labels, batch_size=1024, verbose=0)
    bfloat16_loss, _ = model.evaluate(test.images, test.labels, batch_size=1024, verbose=0)
    evaluation = evaluate_model(to_engine(model), test)
    assert evaluation.loss == pytest.approx(keras_loss, abs=1e-5)
    assert evaluation.loss == pytest.approx(bfloat16_loss, rel=0.05)


def test_evaluation_and_predict_give_identical_probabilities(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same saved model and image: the run's evaluation and `predict` report the same probability, bit for
    bit, whether predict is asked about one image file or a batch."""
    data_dir = train_champion(tmp_path_factory.getbasetemp())
    choice = choose_model("cnn", DataLayout(data_dir))
    folder = tmp_path_factory.mktemp("same-images")
    images, labels = draw_digits(300, seed=5)
    one = answer(choice, [write_styled(images[0], "tinted", folder / "one.png")])
    test = Split(images=np.concatenate([one.images, images[1:]]), labels=labels)
    write_split(folder / "test.parquet", test)
    batch = answer(choice, [folder / "test.parquet"])
    assert np.array_equal(batch.images, test.images)

    evaluation = evaluate_saved_model(DataLayout(data_dir), "cnn", choice.key, folder / "test.parquet", None)
    predicted = evaluation.predictions
    assert np.array_equal(predicted["confidence"], [p.probability for p in batch.predictions.items])
    assert np.array_equal(predicted["predicted"], [p.top for p in batch.predictions.items])
    assert predicted["confidence"][0] == one.predictions.items[0].probability
    assert predicted["predicted"][0] == one.predictions.items[0].top
