"""The one inference engine: a model's ONNX file, run by onnxruntime, for evaluation, `predict` and batch scoring.

Every saved model has `<key>.onnx` beside its `<key>.keras` (`model_files.save_model` writes both). Scoring
anywhere goes through `Engine`, so the accuracy a run reports is the accuracy users get, to the bit. The ONNX
graph is the model computed in float32 with its head's activation left out: it outputs the head's logits, and
`Engine.probabilities` turns them into the calibrated softmax (`modeling.calibration`, from the model's
`<key>.calibration.json`) that evaluation and `predict` both report. This module imports no TensorFlow, so
`predict` starts in well under 2 s, and a cached model's files are checked here before it is reused: a disk can
fail or a person truncate a file, and a model whose files do not open must be trained again.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.limits import MAX_MODEL_MEMBER_BYTES, check_zip_members
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling.calibration import UNCALIBRATED, Calibration, calibration_file, load_calibration, softmax
from mnist_pipeline.modeling.hardware import count_usable_cores

# Images per run call: bounds the convolution's working memory (~90 MB for the CNN) without slowing it.
CHUNK = 1024


def serving_file(model_file: Path) -> Path:
    """Where the ONNX file of a saved `.keras` model lives: beside it, same key."""
    return model_file.with_suffix(".onnx")


def session_options() -> ort.SessionOptions:
    """One intra-op thread per core this process may use (not the host's count, which a container hides), no
    spinning: the pipeline evaluates several models at once on few cores, and spinning threads would steal them."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = count_usable_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Engine:
    """An ONNX classifier in onnxruntime: uint8 images (n, height, width) in, the head's logits or the calibrated
    probabilities out."""

    def __init__(self, path: Path, calibration: Calibration = UNCALIBRATED) -> None:
        self.calibration = calibration
        try:
            self.session = ort.InferenceSession(path, session_options(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises plain Exception subclasses for unreadable models
            raise DataFormatError(f"{path}: expected an ONNX model saved by mnist-pipeline, found: {exc}") from exc
        (image,) = self.session.get_inputs()
        self.input_name = image.name
        self.input_shape = (int(image.shape[1]), int(image.shape[2]))
        self.n_classes = int(self.session.get_outputs()[0].shape[1])

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The head's pre-activation outputs (float64), computed in chunks of CHUNK images."""
        chunks = [
            self.session.run(None, {self.input_name: images[start : start + CHUNK]})[0]
            for start in range(0, len(images), CHUNK)
        ]
        return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros((0, self.n_classes))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The calibrated class probabilities: softmax of the logits over the model's temperature."""
        return softmax(self.logits(images) / self.calibration.temperature)


def open_engine(layout: DataLayout, model: str, key: str) -> Engine:
    """The engine of a saved model, found by name and key in the data dir's models folder (never a given path), with
    its calibration (uncalibrated until its first evaluation writes one); a missing model is a DataFormatError
    naming its `.keras` file."""
    model_file = layout.model_file(model, key)
    onnx_file = serving_file(model_file)
    if not onnx_file.is_file():
        raise DataFormatError(f"{model_file}: expected a saved model with its ONNX file {onnx_file.name}, found none")
    return Engine(onnx_file, load_calibration(calibration_file(model_file)) or UNCALIBRATED)


def check_keras_archive(model_file: Path) -> None:
    """Refuse a `.keras` file that is not a complete zip whose members declare sane sizes (see `limits`)."""
    try:
        with zipfile.ZipFile(model_file) as archive:
            check_zip_members(model_file, archive, MAX_MODEL_MEMBER_BYTES)
            damaged = archive.testzip()
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{model_file}: expected a .keras (zip) model file, found: {exc}") from exc
    if damaged is not None:
        raise DataFormatError(f"{model_file}: expected a complete .keras model file, found member {damaged} damaged")


def find_model_damage(model_file: Path) -> str | None:
    """What is wrong with a saved model's files (its `.keras` zip, its ONNX file when there is one), or None."""
    try:
        check_keras_archive(model_file)
        if serving_file(model_file).exists():
            Engine(serving_file(model_file))
    except DataFormatError as exc:
        return str(exc)
    return None
