"""The seed study as a plain Keras script: the baseline every pipeline benchmark is compared with.

Exactly the seed's models and training (Adam 1e-3, sparse categorical cross-entropy, batch 32, 5/5/10 epochs,
pixels / 255, no validation split). Nothing from mnist_pipeline except reading the Parquet arrays, so it runs offline
on the data `mnist-pipeline ingest` wrote. Prints (and with --out writes) per-model train seconds and test accuracy.
It spells the seed's model names itself, on purpose: it is the study's notebook, not a user of the model registry.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from mnist_pipeline.data.store import read_split

EPOCHS = {"ann_no_hidden": 5, "ann_hidden_100": 5, "cnn": 10}


def build(name: str) -> keras.Model:
    """The seed's three models, layer for layer."""
    if name == "ann_no_hidden":
        return keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="sigmoid")])
    if name == "ann_hidden_100":
        return keras.Sequential(
            [
                keras.Input(shape=(784,)),
                keras.layers.Dense(100, activation="relu"),
                keras.layers.Dense(10, activation="sigmoid"),
            ]
        )
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, (3, 3), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def shaped(name: str, images: np.ndarray) -> np.ndarray:
    """Pixels / 255, flattened for the ANNs, with a channel axis for the CNN (as the seed notebook did)."""
    scaled = images.astype("float32") / 255
    return scaled.reshape(len(scaled), -1) if name.startswith("ann") else scaled[..., np.newaxis]


def run_one(name: str, train, test) -> dict[str, float]:
    model = build(name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train, x_test = shaped(name, train.images), shaped(name, test.images)
    started = time.perf_counter()
    model.fit(x_train, train.labels, epochs=EPOCHS[name], verbose=0)
    seconds = time.perf_counter() - started
    loss, accuracy = model.evaluate(x_test, test.labels, verbose=0)
    return {"train_seconds": round(seconds, 2), "test_accuracy": float(accuracy), "test_loss": float(loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    parser.add_argument("--models", default=",".join(EPOCHS), help="comma-separated subset (default: all three)")
    args = parser.parse_args()
    train = read_split(args.data_dir / "parquet" / "train.parquet")
    test = read_split(args.data_dir / "parquet" / "test.parquet")
    started = time.perf_counter()
    models = {name: run_one(name, train, test) for name in args.models.split(",")}
    result = {
        "script": "bench/seed_script.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "models": models,
        "train_seconds_total": round(sum(m["train_seconds"] for m in models.values()), 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
