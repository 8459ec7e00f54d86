"""The pictures a request carries: its whole body, or each file of a multipart/form-data body.

The body is already capped by `limits.BodyLimit`; multipart parts are kept in memory (python-multipart's
MAX_MEMORY_FILE_SIZE set past the cap), so an upload never spills into a temporary file on disk.
"""

from __future__ import annotations

from python_multipart import create_form_parser
from python_multipart.multipart import Field, File
from starlette.requests import Request

from mnist_pipeline.web.predictions import UploadError

MAX_FILES = 100
BODY_NAME = "body"


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
