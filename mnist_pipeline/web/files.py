"""The reports folder over http: Starlette's StaticFiles (regular files inside the folder only, GET and HEAD only),
plus: a path the OS cannot look up (a symlink loop) is not found rather than a server error, and the response's
length is that of the opened file, not of an earlier `stat` (a run replaces index.html atomically meanwhile); the
file is closed when the response ends (`OpenFileResponse`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from email.utils import formatdate
from mimetypes import guess_type
from typing import BinaryIO

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Receive, Scope, Send

CHUNK = 64 * 1024


def read_chunks(file: BinaryIO, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the open file (fewer only if it was truncated in place)."""
    left = size
    while left > 0:
        chunk = file.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


class OpenFileResponse(StreamingResponse):
    """Streams an open file and closes it when the response is over, however it ends.

    Closing in the chunk generator's `finally` is not enough: a client gone before the body starts (the response
    start fails) leaves the generator unstarted, and an unstarted generator never runs its `finally`.
    """

    def __init__(self, file: BinaryIO, size: int, status_code: int, headers: dict[str, str], media_type: str) -> None:
        super().__init__(read_chunks(file, size), status_code, headers, media_type)
        self.file = file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.file.close()


class ReportFiles(StaticFiles):
    """StaticFiles for the reports folder (see the module docstring for what it adds)."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        try:
            return super().lookup_path(path)
        except OSError:
            return "", None

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        try:
            fd = os.open(full_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:  # gone, or replaced by a symlink since the lookup
            raise HTTPException(status_code=404) from exc
        file = os.fdopen(fd, "rb")
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            file.close()
            raise HTTPException(status_code=404)
        headers = {
            "content-length": str(opened.st_size),
            "last-modified": formatdate(opened.st_mtime, usegmt=True),
            "etag": f'"{opened.st_mtime_ns:x}-{opened.st_size:x}"',
        }
        media_type = guess_type(str(full_path))[0] or "application/octet-stream"
        if self.is_not_modified(Headers(headers), Headers(scope=scope)):
            file.close()
            return NotModifiedResponse(Headers(headers))
        if scope["method"] == "HEAD":
            file.close()
            return Response(b"", status_code, headers, media_type)
        return OpenFileResponse(file, opened.st_size, status_code, headers, media_type)
