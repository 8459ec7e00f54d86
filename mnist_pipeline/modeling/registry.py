"""The model registry: the one place that names the models. Keras-free, so the CLI can read it and start fast.

An entry holds a model's name (in the order reports and the CLI list models), the seed study's test accuracy, its
settings per training profile and its builder (`module:function`, imported only when the model is built; that
module is hashed into the model's training key). Adding a model is one entry here plus one builder function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mnist_pipeline.errors import PipelineError

ARCHITECTURES = "mnist_pipeline.modeling.architectures"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    builder: "package.module:function"; the function takes (name, image_shape, n_classes, LayerOptions) and
    returns an uncompiled keras.Model that takes raw uint8 images and ends in a Dense head named "output".
    seed_accuracy: the seed study's test accuracy (a fraction), or None for a model the study did not have.
    profiles: per profile name, settings that replace the profile's shared ones for this model.
    """

    name: str
    builder: str
    seed_accuracy: float | None = None
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def builder_module(self) -> str:
        return self.builder.partition(":")[0]


# Display order: simplest first, so every table and chart reads as "how much does each step add?".
MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="ann_no_hidden",
            builder=f"{ARCHITECTURES}:build_ann_no_hidden",
            seed_accuracy=0.9254,
            profiles={
                "default": {"epochs": 10},
                "best": {
                    "epochs": 20,
                    "batch_size": 64,
                    "learning_rate": 3e-3,
                    "warmup_epochs": 0.0,
                    "augment_shift": 0.0,
                    "augment_rotation": 0.0,
                },
            },
        ),
        ModelEntry(
            name="ann_hidden_100",
            builder=f"{ARCHITECTURES}:build_ann_hidden_100",
            seed_accuracy=0.9741,
        ),
        ModelEntry(
            name="cnn",
            builder=f"{ARCHITECTURES}:build_cnn",
            seed_accuracy=0.9866,
            profiles={
                # The shifts and rotations of `best`: other writers' digits and MNIST alike are read better
                # (bench/RESULTS.md, "Learning from a few hundred labels").
                "default": {
                    "epochs": 5,
                    "batch_size": 256,
                    "learning_rate": 5e-3,
                    "warmup_epochs": 0.3,
                    "precision": "auto",
                    "augment_shift": 1.0,
                    "augment_rotation": 5.0,
                },
                "seed": {"epochs": 10},
                # Batch and LR chosen on MNIST's and Fashion-MNIST's validation splits (bench/RESULTS.md, "The CNN's
                # batch size and schedule").
                "best": {"epochs": 20, "batch_size": 128, "learning_rate": 3e-3, "precision": "auto"},
            },
        ),
    )
}

# The study's convolutional model, its strongest: `predict` and batch-predict answer with it unless told
# otherwise, and bench/bench_cnn_throughput.py measures its training step.
CNN_MODEL = "cnn"
DEFAULT_PREDICT_MODEL = CNN_MODEL


def model_names() -> tuple[str, ...]:
    """Every registered model, in display order."""
    return tuple(MODELS)


def find_model(name: str) -> ModelEntry:
    """The registered entry, or a PipelineError listing the names we know."""
    try:
        return MODELS[name]
    except KeyError:
        raise PipelineError(f"model: expected one of {', '.join(MODELS)}, found {name!r}") from None


def seed_accuracies() -> Mapping[str, float | None]:
    """The seed study's test accuracy per model (None for models it did not have)."""
    return MappingProxyType({name: entry.seed_accuracy for name, entry in MODELS.items()})


# The seed study's accuracies were measured on MNIST's test split: they are a fair bar only for a run scored on
# that split, recognised by its content hash (manifest `splits.test.sha256`, metrics.json `data.test_sha256`),
# which every MNIST source gives: MNIST's test images and labels are byte-identical whichever source serves them.
SEED_STUDY_TEST_SHA256 = "5959afb19c69de2942976a8140417209dc34a3381ffcd4aa78c49af15ce7872f"


def seed_study_accuracies(test_sha256: str | None) -> Mapping[str, float | None]:
    """The seed study's accuracies for a run scored on test split `test_sha256`: none unless it is MNIST's, since
    figures on another dataset (Fashion-MNIST, say) say nothing against them."""
    return seed_accuracies() if test_sha256 == SEED_STUDY_TEST_SHA256 else MappingProxyType({})


def load_builder(name: str) -> Callable[..., Any]:
    """Import the model's builder function (this is where Keras gets imported)."""
    module, _, function = find_model(name).builder.partition(":")
    return getattr(importlib.import_module(module), function)
