"""The seed study's three architectures, one builder function each (registered in `modeling.registry`).

Every model takes raw uint8 images (height, width) and starts with parameter-free preprocessing (pixels / 255,
flatten or add a channel axis), so a saved `.keras` file is self-contained: feed it Parquet pixels as they are.
Every model ends in a Dense head; evaluation relies on that to read the head's logits.
Adding a model = one builder function here (or in any module) + one entry in `modeling.registry`.
"""

from __future__ import annotations

import keras

from mnist_pipeline.modeling.registry import load_builder


class LayerOptions:
    """What a builder needs beyond the architecture: seeded initializers and the hidden layers' dtype policy.

    Explicit per-layer seeds make weight initialisation independent of global random state, which other models
    training in parallel threads of the same process would otherwise race on. `dtype_policy` "mixed_bfloat16"
    computes the hidden layers in bfloat16 (float32 weights); the output layer always computes in float32.
    """

    def __init__(self, seed: int | None, dtype_policy: str = "float32") -> None:
        self.seed = seed
        self.dtype_policy = dtype_policy
        self._count = 0

    def kernel(self) -> keras.initializers.Initializer:
        """Glorot uniform, the Keras default the seed study used, with the next derived seed."""
        self._count += 1
        seed = None if self.seed is None else self.seed * 1000 + self._count
        return keras.initializers.GlorotUniform(seed=seed)

    def dense(self, units: int, activation: str, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            units, activation=activation, kernel_initializer=self.kernel(), dtype=self.dtype_policy, name=name
        )

    def head(self, n_classes: int, activation: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            n_classes, activation=activation, kernel_initializer=self.kernel(), dtype="float32", name="output"
        )

    def raw_input(self, image_shape: tuple[int, int]) -> list[keras.layers.Layer]:
        """uint8 pixels in, pixels / 255 out: the seed's preprocessing, inside the model."""
        return [
            keras.Input(shape=image_shape, dtype="uint8", name="pixels"),
            keras.layers.Rescaling(1 / 255, dtype=self.dtype_policy),
        ]


def build_ann_no_hidden(name: str, image_shape: tuple[int, int], n_classes: int, opts: LayerOptions) -> keras.Model:
    """Input(784) -> Dense(10, sigmoid)."""
    return keras.Sequential(
        [
            *opts.raw_input(image_shape),
            keras.layers.Flatten(dtype=opts.dtype_policy),
            opts.head(n_classes, "sigmoid"),
        ],
        name=name,
    )


def build_ann_hidden_100(name: str, image_shape: tuple[int, int], n_classes: int, opts: LayerOptions) -> keras.Model:
    """Input(784) -> Dense(100, relu) -> Dense(10, sigmoid)."""
    return keras.Sequential(
        [
            *opts.raw_input(image_shape),
            keras.layers.Flatten(dtype=opts.dtype_policy),
            opts.dense(100, "relu", name="hidden"),
            opts.head(n_classes, "sigmoid"),
        ],
        name=name,
    )


def build_cnn(name: str, image_shape: tuple[int, int], n_classes: int, opts: LayerOptions) -> keras.Model:
    """Input(28,28,1) -> Conv2D(32, 3x3, relu) -> MaxPool(2x2) -> Flatten -> Dense(100, relu) -> Dense(10, softmax)."""
    policy = opts.dtype_policy
    return keras.Sequential(
        [
            *opts.raw_input(image_shape),
            keras.layers.Reshape((*image_shape, 1), dtype=policy),
            keras.layers.Conv2D(
                32, (3, 3), activation="relu", kernel_initializer=opts.kernel(), dtype=policy, name="conv"
            ),
            keras.layers.MaxPooling2D((2, 2), dtype=policy),
            keras.layers.Flatten(dtype=policy),
            opts.dense(100, "relu", name="hidden"),
            opts.head(n_classes, "softmax"),
        ],
        name=name,
    )


def build_model(
    name: str,
    image_shape: tuple[int, int] = (28, 28),
    n_classes: int = 10,
    seed: int | None = None,
    dtype_policy: str = "float32",
) -> keras.Model:
    """A fresh, uncompiled model; the same `seed` gives the same initial weights in any thread or process."""
    build = load_builder(name)
    return build(name, tuple(image_shape), n_classes, LayerOptions(seed, dtype_policy))
