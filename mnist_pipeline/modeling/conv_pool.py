"""Train each Conv2D -> MaxPooling2D pair as one layer that pools before the activation: same numbers, less work.

Why: profiling a CNN training step on CPU (TF profiler, bench/RESULTS.md "The CNN closer to the machine's limit")
put the largest single cost in the ReLU gradient of the conv output (n x 26 x 26 x 32 values): in bfloat16 it is a
generic Eigen kernel, not a oneDNN one. Max pooling commutes with any non-decreasing elementwise function and with
a per-channel bias, so `act(pool(conv(x) + b)) == pool(act(conv(x) + b))` exactly (rounding to bfloat16 is
non-decreasing too); pooling first runs the activation and its gradient on a quarter of the values. Gradients
match as well: pooling routes each gradient to its window's (first) maximum, which the activation does not move,
and where that maximum is not positive the ReLU gradient is zero in both orders.

The fused layer calls the model's own Conv2D weights and MaxPooling2D, so training updates the model's variables
and the saved model keeps the seed's layers: loading it and the numpy predict runner need nothing new.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Activations that are non-decreasing, hence commute with max pooling.
MONOTONE_ACTIVATIONS = frozenset({"linear", "relu", "sigmoid", "tanh"})


class PooledConv2D(keras.layers.Layer):
    """`conv` then `pool`, computed as act(pool(conv(x) + b)) with the two layers' own weights and settings.

    In bfloat16 the bias is added before pooling: oneDNN then fuses it into the convolution and, backwards, into
    the filter gradient. In float32 that fused filter gradient measured slower than adding the bias after pooling
    to a quarter of the values, so there it comes after the pool.
    """

    def __init__(self, conv: keras.layers.Conv2D, pool: keras.layers.MaxPooling2D, **kwargs: object) -> None:
        super().__init__(dtype=conv.dtype_policy, name=f"{conv.name}_{pool.name}", **kwargs)
        self.conv, self.pool = conv, pool
        self.bias_first = self.compute_dtype == "bfloat16"

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        conv = self.conv
        values = conv.convolution_op(inputs, conv.kernel)
        if conv.use_bias and self.bias_first:
            values = tf.nn.bias_add(values, conv.bias)
        values = self.pool(values)
        if conv.use_bias and not self.bias_first:
            values = tf.nn.bias_add(values, conv.bias)
        return conv.activation(values)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.pool.compute_output_shape(self.conv.compute_output_shape(input_shape))


def can_fuse(layer: keras.layers.Layer, following: keras.layers.Layer) -> bool:
    """Whether `layer` -> `following` is a Conv2D -> MaxPooling2D pair that PooledConv2D computes exactly."""
    return (
        type(layer) is keras.layers.Conv2D
        and type(following) is keras.layers.MaxPooling2D
        and layer.data_format == following.data_format == "channels_last"
        and keras.activations.serialize(layer.activation) in MONOTONE_ACTIVATIONS
        and layer.dtype_policy.name == following.dtype_policy.name
    )


def training_model(model: keras.Model) -> keras.Model:
    """`model` with every fusable Conv2D -> MaxPooling2D pair as one PooledConv2D, sharing all its variables.

    Returns `model` itself when it has no such pair (or is not a Sequential). Train the returned model; `model`
    then holds the trained weights.
    """
    if not isinstance(model, keras.Sequential):
        return model
    layers, fused, position = model.layers, [], 0
    while position < len(layers):
        following = layers[position + 1] if position + 1 < len(layers) else None
        if following is not None and can_fuse(layers[position], following):
            fused.append(PooledConv2D(layers[position], following))
            position += 2
        else:
            fused.append(layers[position])
            position += 1
    if len(fused) == len(layers):
        return model
    inputs = keras.Input(shape=model.input_shape[1:], dtype=model.inputs[0].dtype, name=model.inputs[0].name)
    return keras.Sequential([inputs, *fused], name=model.name)
