"""The `best` profile: the seed's layers, trained longer with augmentation; it must travel to other datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.config import build_config
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.increments.versions import ingest_and_publish_grown
from mnist_pipeline.modeling.architectures import build_model
from mnist_pipeline.modeling.evaluation import evaluate_model
from mnist_pipeline.modeling.model_files import to_engine
from mnist_pipeline.modeling.profiles import resolve_config
from mnist_pipeline.modeling.training import configure_tensorflow, train_model
from tests.test_ingest_idx import write_idx_dir

MODELS = ("ann_no_hidden", "ann_hidden_100", "cnn")


def test_best_is_a_profile_of_the_cli_and_the_flow() -> None:
    assert build_config(profile="best").profile == "best"


@pytest.mark.parametrize("model", MODELS)
def test_best_keeps_the_seed_layers_and_trains_longer(model: str) -> None:
    best, seed = resolve_config("best", model), resolve_config("seed", model)
    assert best.lr_schedule == "cosine" and best.epochs > seed.epochs
    assert best.early_stopping_patience is None and 0 < best.validation_fraction < 0.1
    augmented = best.augment_shift > 0 and best.augment_rotation > 0
    assert augmented is (model != "ann_no_hidden")
    assert build_model(model, seed=1).count_params() == build_model(model, seed=2).count_params()


def make_faint_digits(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A ten-class 28x28 dataset harder than MNIST: a faint class-specific block in strong noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 160, size=(rows, 28, 28))
    for k in range(10):
        row, col = divmod(k, 4)
        images[labels == k, 2 + row * 8 : 8 + row * 8, 2 + col * 6 : 8 + col * 6] += 30
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def test_best_on_another_ten_class_idx_dataset_is_at_least_as_good_as_default(tmp_path: Path) -> None:
    """A 28x28 ten-class IDX directory that is not MNIST: the profile runs unchanged and does not lose."""
    x_train, y_train = make_faint_digits(600, seed=11)
    x_test, y_test = make_faint_digits(400, seed=12)
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    layout = DataLayout(tmp_path / "data")
    _, report = ingest_and_publish_grown(f"idx:{write_idx_dir(tmp_path / 'idx', arrays)}", layout)
    assert report.success
    train, test = read_split(layout.split_file("train")), read_split(layout.split_file("test"))
    configure_tensorflow(None, deterministic=True)
    for model in MODELS:
        scores = {}
        for profile in ("default", "best"):
            config = resolve_config(profile, model)
            scores[profile] = evaluate_model(to_engine(train_model(model, config, train, seed=42).model), test).accuracy
        assert scores["best"] >= scores["default"], (model, scores)
