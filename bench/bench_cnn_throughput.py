"""How close the CNN's training step comes to the machine's float32 matmul peak, per precision.

Measures on the machine that runs it, in one process: TF's float32 matmul throughput (best of 5, n x n), then the
seed CNN trained by the package's own `train_model` (default profile settings, full train split) for 2 epochs in
each precision; the second epoch (no tracing) gives images/s and GFLOP/s. Also times the CNN's layers alone
(forward + backward on one batch) to show where a step spends its time. Prints one JSON object.
  bench_cnn_throughput.py --data-dir data [--precisions float32,mixed_bfloat16] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from machine import describe_cpu

from mnist_pipeline import defaults
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.registry import CNN_MODEL

# Multiply-adds x 2 of the seed CNN per image; training = forward + backward (two forward-sized products per
# layer, except the first layer, which needs no input gradient).
CONV, HIDDEN, OUTPUT = 26 * 26 * 32 * 3 * 3 * 2, 13 * 13 * 32 * 100 * 2, 100 * 10 * 2
TRAIN_FLOPS_PER_IMAGE = (CONV + HIDDEN + OUTPUT) + CONV + 2 * (HIDDEN + OUTPUT)


def measure_matmul(n: int, repeats: int = 5) -> float:
    """Best-of GFLOP/s of one n x n float32 matmul with TF's default thread pools."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n), seed=1), tf.random.normal((n, n), seed=2)
    matmul = tf.function(tf.matmul)
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def time_layers(precision: str, batch: int = 256, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per forward+backward of each CNN layer alone, on one batch (median of `repeats`)."""
    import keras
    import numpy as np
    import tensorflow as tf

    shapes = {
        "conv 3x3x32": (keras.layers.Conv2D(32, 3, activation="relu", dtype=precision), (batch, 28, 28, 1)),
        "maxpool 2x2": (keras.layers.MaxPooling2D(2, dtype=precision), (batch, 26, 26, 32)),
        "dense 5408->100": (keras.layers.Dense(100, activation="relu", dtype=precision), (batch, 5408)),
        "dense 100->10": (keras.layers.Dense(10, dtype="float32"), (batch, 100)),
    }
    timings = {}
    for name, (layer, shape) in shapes.items():
        x = tf.random.normal(shape, seed=3)
        layer.build(shape)

        @tf.function
        def step(x: tf.Tensor, layer: keras.layers.Layer = layer) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(layer(x), tf.float32))
            return tape.gradient(loss, [x, *layer.trainable_variables])

        step(x)
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            [g.numpy() for g in step(x)]
            samples.append(time.perf_counter() - started)
        timings[name] = round(1000 * float(np.median(samples)), 2)
    return timings


def measure_cnn(data_dir: Path, precision: str) -> dict[str, Any]:
    from mnist_pipeline.modeling.profiles import resolve_config
    from mnist_pipeline.modeling.training import train_model

    train = read_split(data_dir / "parquet" / "train.parquet")
    config = replace(
        resolve_config(defaults.PROFILE, CNN_MODEL, epochs=2, precision=precision), early_stopping_patience=None
    )
    result = train_model(CNN_MODEL, config, train, seed=defaults.SEED)
    images = round(train.rows * (1 - config.validation_fraction))
    second = result.epoch_seconds[-1]
    return {
        "precision": precision,
        "batch_size": config.batch_size,
        "epoch_seconds": result.epoch_seconds,
        "fit_seconds": round(result.seconds, 2),
        "outside_epochs_seconds": round(result.seconds - sum(result.epoch_seconds), 3),
        "images_per_second": round(images / second),
        "gflops": round(images * TRAIN_FLOPS_PER_IMAGE / second / 1e9, 1),
        "layers_ms_per_batch": time_layers(precision),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from mnist_pipeline.modeling.training import configure_tensorflow

    configure_tensorflow(None, deterministic=True)
    peak = {n: round(measure_matmul(n), 1) for n in (2048, 4096)}
    results = [measure_cnn(args.data_dir, precision) for precision in args.precisions.split(",")]
    for result in results:
        result["fraction_of_float32_matmul_peak"] = round(result["gflops"] / max(peak.values()), 3)
    report = {"cpu": describe_cpu(), "matmul_gflops": peak, CNN_MODEL: results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
