"""Whether a saved model's files open, checked without TensorFlow before a cached model is reused.

Both files are written durably (`model_files.save_model`), but a disk can still fail or a person can truncate a
file; a model whose files do not open must be trained again rather than counted as present forever.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mnist_pipeline.data.limits import MAX_MODEL_MEMBER_BYTES, check_zip_members
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling.serving import Engine, serving_file


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
