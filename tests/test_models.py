"""The registry names the seed study's models; their builders reproduce its architectures exactly."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling import registry
from mnist_pipeline.runs.metrics import seed_study_for


def build_model(*args: Any, **kwargs: Any) -> Any:
    """The real builder, imported when a test builds a model: collecting this module must not import Keras."""
    from mnist_pipeline.modeling.architectures import build_model as build

    return build(*args, **kwargs)


SEED_PARAMS = {"ann_no_hidden": 7850, "ann_hidden_100": 79510, "cnn": 542230}
SEED_HEADS = {"ann_no_hidden": "sigmoid", "ann_hidden_100": "sigmoid", "cnn": "softmax"}


def test_registry_holds_the_three_seed_models_with_the_seed_accuracies() -> None:
    assert registry.model_names() == ("ann_no_hidden", "ann_hidden_100", "cnn")
    assert all(entry.name == name for name, entry in registry.MODELS.items())
    assert dict(registry.seed_accuracies()) == {"ann_no_hidden": 0.9254, "ann_hidden_100": 0.9741, "cnn": 0.9866}
    assert registry.DEFAULT_PREDICT_MODEL in registry.MODELS


def test_the_seed_study_is_a_bar_only_on_mnists_whole_test_split() -> None:
    assert registry.seed_study_accuracies(registry.SEED_STUDY_TEST_SHA256) == registry.seed_accuracies()
    assert dict(registry.seed_study_accuracies("0" * 64)) == {}
    assert dict(registry.seed_study_accuracies(None)) == {}
    mnist = {"data": {"test_sha256": registry.SEED_STUDY_TEST_SHA256}, "run": {"parameters": {"test_limit": None}}}
    assert seed_study_for(mnist) == registry.seed_accuracies()
    assert dict(seed_study_for({**mnist, "run": {"parameters": {"test_limit": 200}}})) == {}
    assert dict(seed_study_for({"data": {}, "run": {}})) == {}


def test_reading_the_registry_imports_no_keras() -> None:
    code = (
        "import sys\n"
        "from mnist_pipeline.modeling.registry import find_model, model_names, seed_accuracies\n"
        "from mnist_pipeline.modeling.profiles import resolve_config\n"
        "[find_model(name) for name in model_names()], seed_accuracies(), resolve_config('best', model_names()[0])\n"
        "assert not {'keras', 'tensorflow'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", list(SEED_PARAMS))
def test_builder_matches_seed_shape_parameters_and_head(name: str) -> None:
    model = build_model(name)
    assert model.output_shape == (None, 10)
    assert model.count_params() == SEED_PARAMS[name]
    assert model.layers[-1].activation.__name__ == SEED_HEADS[name]
    outputs = model.predict(np.zeros((3, 28, 28), dtype=np.uint8), verbose=0)
    assert outputs.shape == (3, 10)


def test_cnn_layers_are_the_seed_layers() -> None:
    layers = {layer.name: layer for layer in build_model("cnn").layers}
    assert layers["conv"].filters == 32 and layers["conv"].kernel_size == (3, 3)
    assert layers["conv"].activation.__name__ == "relu"
    assert layers["hidden"].units == 100 and layers["hidden"].activation.__name__ == "relu"


def test_models_take_raw_pixels_and_scale_them_inside() -> None:
    model = build_model("ann_no_hidden", seed=1)
    kernel, bias = model.layers[-1].get_weights()
    image = np.full((1, 28, 28), 255, dtype=np.uint8)
    expected = 1 / (1 + np.exp(-(kernel.sum(axis=0) + bias)))
    np.testing.assert_allclose(model.predict(image, verbose=0)[0], expected, rtol=1e-5)


def test_image_shape_and_classes_are_parameters() -> None:
    model = build_model("ann_hidden_100", image_shape=(8, 8), n_classes=3)
    assert model.output_shape == (None, 3)
    assert model.count_params() == 64 * 100 + 100 + 100 * 3 + 3


def test_same_seed_same_initial_weights_other_seed_differs() -> None:
    first, again, other = (build_model("cnn", seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights(), strict=True))
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(PipelineError, match=r"ann_no_hidden, ann_hidden_100, cnn.*'resnet'"):
        build_model("resnet")
    with pytest.raises(PipelineError):
        registry.find_model("")
