"""The TensorFlow-free runner against Keras itself, on models trained for real."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.predict.runner import KerasClassifier, NumpyClassifier, load_classifier
from tests.predict_support import draw_digits, train_champion


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return draw_digits(200, seed=11)[0]


def test_numpy_runner_matches_keras_on_the_bfloat16_cnn(tmp_path_factory: pytest.TempPathFactory, images) -> None:
    path = train_champion(tmp_path_factory.getbasetemp()) / "models" / "cnn" / "drawn-digits.keras"
    runner = load_classifier(path)
    assert isinstance(runner, NumpyClassifier)
    assert runner.input_shape == (28, 28)
    ours, keras_logits = runner.logits(images), KerasClassifier(path).logits(images)
    assert np.array_equal(ours.argmax(axis=1), keras_logits.argmax(axis=1))
    # bfloat16 keeps 8 significant bits: the two engines may round a few sums differently.
    assert np.abs(softmax(ours) - softmax(keras_logits)).max() < 0.02


def test_numpy_runner_matches_keras_on_a_float32_ann(tmp_path: Path, images: np.ndarray) -> None:
    from mnist_pipeline.data.dataset import Split
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.profiles import TrainConfig
    from mnist_pipeline.modeling.training import train_model

    train_images, labels = draw_digits(500, seed=2)
    config = TrainConfig(profile="seed", epochs=1, batch_size=64)
    model = train_model("ann_hidden_100", config, Split(images=train_images, labels=labels), seed=1).model
    save_model(model, tmp_path / "ann.keras")
    ours = load_classifier(tmp_path / "ann.keras").logits(images)
    np.testing.assert_allclose(ours, KerasClassifier(tmp_path / "ann.keras").logits(images), rtol=1e-4, atol=1e-4)


def test_a_layer_the_runner_lacks_falls_back_to_keras(tmp_path: Path, images: np.ndarray) -> None:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "odd.keras")
    runner = load_classifier(tmp_path / "odd.keras")
    assert isinstance(runner, KerasClassifier)
    assert runner.logits(images[:5]).shape == (5, 10)


def test_a_corrupt_model_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match=r"broken\.keras: expected a \.keras model"):
        load_classifier(tmp_path / "broken.keras")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(DataFormatError, match=r"empty\.keras: expected a \.keras model saved by mnist-pipeline"):
        load_classifier(tmp_path / "empty.keras")


def test_bfloat16_rounding_matches_ml_dtypes_including_ties() -> None:
    import ml_dtypes

    from mnist_pipeline.predict.numpy_ops import to_bfloat16

    values = np.concatenate(
        [
            np.random.default_rng(0).normal(scale=3.0, size=10_000).astype(np.float32),
            np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 0.0, 255.0, 1 / 255], dtype=np.float32),
        ]
    )
    expected = values.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert np.array_equal(to_bfloat16(values.copy()), expected)
