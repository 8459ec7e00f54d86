"""Training's fused Adam follows Keras' Adam, and the saved model carries a plain Keras Adam with its state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mnist_pipeline.modeling.fused_adam import FusedAdam, copy_state
from mnist_pipeline.modeling.model_files import save_model
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.training import configure_tensorflow, train_model
from tests.synthetic_digits import make_split


def _train(optimizer: keras.optimizers.Optimizer, steps: int = 20) -> keras.Variable:
    rng = np.random.default_rng(0)
    variable = keras.Variable(rng.normal(size=(300, 40)).astype(np.float32))
    gradients = [tf.constant(rng.normal(size=(300, 40)).astype(np.float32)) for _ in range(steps)]

    @tf.function
    def step(gradient: tf.Tensor) -> None:
        optimizer.apply([gradient], [variable])

    for gradient in gradients:
        step(gradient)
    return variable


def test_fused_adam_follows_keras_adam_to_rounding() -> None:
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 15, warmup_target=5e-3, warmup_steps=5)
    reference, fused = keras.optimizers.Adam(schedule), FusedAdam(schedule)
    expected, actual = _train(reference), _train(fused)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    assert not np.allclose(actual.numpy(), _train(keras.optimizers.SGD(0.0)).numpy())
    for mine, theirs in zip(fused.variables, reference.variables, strict=True):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-4, atol=1e-7)


def test_copy_state_gives_a_plain_adam_the_trained_slots() -> None:
    fused = FusedAdam(1e-3)
    variable = _train(fused, steps=3)
    plain = keras.optimizers.Adam(1e-3)
    copy_state(fused, plain, [variable])
    assert int(plain.iterations.numpy()) == 3
    for mine, theirs in zip(plain.variables, fused.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_saved_cnn_has_the_seed_layers_and_a_plain_adam_that_plain_keras_loads(tmp_path: Path) -> None:
    configure_tensorflow(threads=None, deterministic=True)
    data = make_split(300)
    result = train_model("cnn", TrainConfig(profile="test", epochs=1, batch_size=64), data, seed=2)
    path = tmp_path / "cnn.keras"
    save_model(result.model, path)
    script = f"""
import keras
model = keras.saving.load_model({str(path)!r})
optimizer = model.optimizer
print(type(optimizer).__name__, int(optimizer.iterations.numpy()), *[type(x).__name__ for x in model.layers])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    optimizer, iterations, *layers = done.stdout.split()
    assert (optimizer, int(iterations)) == ("Adam", 5)
    assert layers == ["Rescaling", "Reshape", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
