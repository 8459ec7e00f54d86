"""A cap on request bodies, as pure ASGI middleware, so no endpoint ever holds more than the limit in memory.

A declared Content-Length over the limit is refused before anything is read; a body sent without one (chunked)
is counted as it streams in and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY = 2 * 1024 * 1024


class BodyTooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit."""


def describe_limit(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


class BodyLimit:
    """Refuse (413, JSON error) any http request whose body is over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    def too_large(self, found: str) -> JSONResponse:
        return JSONResponse(
            {"error": f"request body: expected at most {describe_limit(self.limit)}, found {found}"}, status_code=413
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self.too_large(f"{int(declared)} bytes (Content-Length)")(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self.too_large(f"more than that (a streamed body, stopped after {received} bytes)")(
                scope, receive, send
            )
