"""A fourth model, added as docs/training.md says: one builder function (here) plus one registry entry (in the test)."""

from __future__ import annotations

import keras

from mnist_pipeline.modeling.architectures import LayerOptions

TOY_HIDDEN_UNITS = 16


def build_toy(name: str, image_shape: tuple[int, int], n_classes: int, opts: LayerOptions) -> keras.Model:
    """Input(h*w) -> Dense(16, relu) -> Dense(n_classes, softmax): small enough to train in a second."""
    return keras.Sequential(
        [
            *opts.raw_input(image_shape),
            keras.layers.Flatten(dtype=opts.dtype_policy),
            opts.dense(TOY_HIDDEN_UNITS, "relu", name="hidden"),
            opts.head(n_classes, "softmax"),
        ],
        name=name,
    )
