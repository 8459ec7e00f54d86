"""Training's fused conv + pool layer computes what the seed's Conv2D -> MaxPooling2D layers compute."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnist_pipeline.modeling.architectures import build_model
from mnist_pipeline.modeling.conv_pool import PooledConv2D, can_fuse, training_model

# bfloat16 keeps 8 bits of mantissa; float32 sums in another order only.
TOLERANCE = {"float32": 1e-5, "mixed_bfloat16": 2e-2}


def _layers(policy: str, activation: str = "relu") -> tuple[keras.layers.Conv2D, keras.layers.MaxPooling2D]:
    conv = keras.layers.Conv2D(
        32,
        3,
        activation=activation,
        dtype=policy,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=2),
    )
    conv.build((None, 28, 28, 1))
    return conv, keras.layers.MaxPooling2D(2, dtype=policy)


def _outputs_and_gradients(
    layer: keras.layers.Layer, conv: keras.layers.Conv2D, images: tf.Tensor, upstream: tf.Tensor
) -> list:
    """In graph mode, as in training, so TF's oneDNN rewrites (fused bias, fused filter gradient) apply."""

    @tf.function
    def run() -> list:
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(tf.cast(layer(images), tf.float32) * upstream)
        return [tf.cast(layer(images), tf.float32), *tape.gradient(loss, [images, conv.kernel, conv.bias])]

    return run()


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_pooled_conv_matches_conv_then_pool_values_and_gradients(policy: str) -> None:
    conv, pool = _layers(policy)
    seed_layers = keras.Sequential([conv, pool])
    fused = PooledConv2D(conv, pool)
    rng = np.random.default_rng(3)
    images = tf.constant(rng.random((16, 28, 28, 1), dtype=np.float32))
    upstream = tf.constant(rng.normal(size=(16, 13, 13, 32)).astype(np.float32))
    expected = _outputs_and_gradients(seed_layers, conv, images, upstream)
    actual = _outputs_and_gradients(fused, conv, images, upstream)
    assert actual[0].shape == (16, 13, 13, 32)
    assert float(tf.reduce_min(actual[0])) == 0.0  # the ReLU did act
    for got, want in zip(actual, expected, strict=True):
        scale = max(1.0, float(tf.reduce_max(tf.abs(want))))
        np.testing.assert_allclose(got.numpy() / scale, want.numpy() / scale, atol=TOLERANCE[policy])


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_training_model_shares_the_cnn_variables_and_predicts_the_same(policy: str) -> None:
    model = build_model("cnn", seed=5, dtype_policy=policy)
    fused = training_model(model)
    assert [type(layer).__name__ for layer in fused.layers].count("PooledConv2D") == 1
    assert [id(v) for v in fused.trainable_variables] == [id(v) for v in model.trainable_variables]
    assert fused.count_params() == model.count_params()
    images = np.random.default_rng(4).integers(0, 256, (32, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(fused.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    model.layers[2].kernel.assign(np.zeros((3, 3, 1, 32), np.float32))
    np.testing.assert_allclose(fused.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_models_without_a_conv_pool_pair_are_trained_as_they_are() -> None:
    model = build_model("ann_hidden_100", seed=1)
    assert training_model(model) is model


def test_only_monotone_activations_are_fused() -> None:
    assert can_fuse(*_layers("float32", "relu"))
    assert not can_fuse(*_layers("float32", "gelu"))
    conv, _ = _layers("float32")
    assert not can_fuse(conv, keras.layers.AveragePooling2D(2))
