"""Uploaded pictures: read from a request (its whole body, or each file of a multipart body, kept in memory: never
a temporary file), then answered the way `predict` answers files, each record with `image` (the 28x28 picture the
model saw, as a PNG data URI) and `champion_since` (docs/app.md, API).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from python_multipart import create_form_parser
from python_multipart.multipart import Field, File
from starlette.requests import Request

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.predict.answer import Answer, predict_images, to_records
from mnist_pipeline.predict.inputs import read_image, to_png
from mnist_pipeline.predict.preprocess import EmptyImageError, to_mnist_style
from mnist_pipeline.web.champion import Serving

# The picture formats the app decodes (Pillow format names), and how its messages name them.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
ALLOWED = "PNG, JPEG, BMP, GIF, TIFF or WebP"
MAX_FILES = 100
BODY_NAME = "body"


class NamedUpload(io.BytesIO):
    """An uploaded file in memory that Pillow's messages name by its upload name, not by an object address."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.upload_name = name

    def __repr__(self) -> str:
        return repr(self.upload_name)


class UploadError(Exception):
    """An upload the app cannot answer: `status` is the http code, the message names the input."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def prepare_upload(name: str, data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The uint8 `shape` image the model sees for one uploaded file; UploadError when there is none."""
    if not data:
        raise UploadError(400, f"{name}: expected a {ALLOWED} image, found an empty body")
    try:
        picture = read_image(NamedUpload(data, name), FORMATS)
    except DataFormatError as exc:
        raise UploadError(415, f"{name}: {exc}") from exc
    try:
        return to_mnist_style(picture, shape)
    except EmptyImageError as exc:
        raise UploadError(422, f"{name}: expected a drawn digit, found an empty drawing ({exc})") from exc
    except DataFormatError as exc:
        raise UploadError(422, f"{name}: {exc}") from exc


def to_data_uri(image: np.ndarray) -> str:
    """An 8-bit grayscale PNG of `image` as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(to_png(image)).decode("ascii")


def answer_uploads(
    serving: Serving, uploads: list[tuple[str, bytes]], answer_all: bool = False
) -> list[dict[str, Any]]:
    """One record per upload, in order (`label` null and `unsure` true under the threshold, unless `answer_all`);
    the first upload that cannot be answered raises UploadError."""
    shape = serving.engine.input_shape
    images = np.stack([prepare_upload(name, data, shape) for name, data in uploads])
    names = [name for name, _ in uploads]
    predictions = predict_images(serving.engine, images, names, answer_all=answer_all)
    result = Answer(serving.choice, predictions, [], images)
    return [
        {**record, "image": to_data_uri(image), "champion_since": serving.since}
        for record, image in zip(to_records(result), images, strict=True)
    ]


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each file part, in order; other fields are ignored."""
    files: list[tuple[str, bytes]] = []

    def on_file(file: File) -> None:
        if len(files) == MAX_FILES:
            raise UploadError(413, f"multipart body: expected at most {MAX_FILES} files, found more")
        name = (file.file_name or file.field_name or b"").decode("utf-8", "replace") or f"file {len(files) + 1}"
        file.file_object.seek(0)
        files.append((name, file.file_object.read()))

    def on_field(field: Field) -> None:
        return None

    try:
        parser = create_form_parser(
            {"Content-Type": content_type.encode("latin-1")},
            on_field,
            on_file,
            config={"MAX_MEMORY_FILE_SIZE": float("inf")},
        )
        parser.write(body)
        parser.finalize()
    except ValueError as exc:  # python-multipart's parse errors are ValueErrors
        raise UploadError(400, f"multipart body: expected multipart/form-data with image files, found: {exc}") from exc
    if not files:
        raise UploadError(400, "multipart body: expected one or more image files, found none")
    return files


async def read_uploads(request: Request) -> list[tuple[str, bytes]]:
    """The request's pictures: multipart files, else the body itself as one picture named `body`."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return parse_multipart(content_type, body)
    return [(BODY_NAME, body)]
