"""The serving engine: every saved model has its ONNX file, which onnxruntime scores as Keras does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling.hardware import count_usable_cores
from mnist_pipeline.modeling.serving import open_engine, session_options
from tests.predict_support import draw_digits


@pytest.fixture(scope="module")
def saved_ann(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataLayout, object]:
    """A float32 ANN with a sigmoid head, trained for real and saved under key `ann` of a fresh data dir."""
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.profiles import TrainConfig
    from mnist_pipeline.modeling.training import train_model

    images, labels = draw_digits(500, seed=2)
    config = TrainConfig(profile="seed", epochs=1, batch_size=64)
    model = train_model("ann_hidden_100", config, Split(images=images, labels=labels), seed=1).model
    layout = DataLayout(tmp_path_factory.mktemp("engine") / "data")
    save_model(model, layout.model_file("ann_hidden_100", "ann"))
    return layout, model


def test_the_engine_gives_keras_logits_of_the_head(saved_ann: tuple[DataLayout, object]) -> None:
    import keras

    layout, model = saved_ann
    assert layout.model_file("ann_hidden_100", "ann").with_suffix(".onnx").is_file()
    images = draw_digits(200, seed=11)[0]
    engine = open_engine(layout, "ann_hidden_100", "ann")
    assert engine.input_shape == (28, 28)
    head = model.layers[-1]
    features = keras.Model(model.inputs, head.input).predict(images, verbose=0)
    kernel, bias = head.get_weights()
    np.testing.assert_allclose(engine.logits(images), features @ kernel + bias, rtol=1e-5, atol=1e-5)
    assert engine.logits(images[:0]).shape == (0, 10)


def test_a_model_without_its_onnx_file_is_named_not_exported(saved_ann: tuple[DataLayout, object]) -> None:
    layout, _ = saved_ann
    alone = layout.model_file("ann_hidden_100", "alone")
    shutil.copyfile(layout.model_file("ann_hidden_100", "ann"), alone)
    with pytest.raises(DataFormatError, match=r"alone\.keras: expected a saved model with its ONNX file alone\.onnx"):
        open_engine(layout, "ann_hidden_100", "alone")
    assert not alone.with_suffix(".onnx").exists()


def test_a_missing_or_corrupt_model_is_named(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    with pytest.raises(
        DataFormatError, match=r"cnn/gone\.keras: expected a saved model with its ONNX file gone\.onnx, found none"
    ):
        open_engine(layout, "cnn", "gone")
    broken = layout.model_file("cnn", "broken").with_suffix(".onnx")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(DataFormatError, match=r"broken\.onnx: expected an ONNX model saved by mnist-pipeline"):
        open_engine(layout, "cnn", "broken")


def test_sessions_use_the_cores_this_process_may_run_on() -> None:
    assert session_options().intra_op_num_threads == count_usable_cores()


def test_predicting_imports_no_tensorflow() -> None:
    code = (
        "import sys, mnist_pipeline.predict.answer, mnist_pipeline.predict.batch\n"
        "print(any(m.startswith(('tensorflow', 'keras')) for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
