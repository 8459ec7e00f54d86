"""The app's request guards, as pure ASGI middleware that refuses a request before any endpoint sees it (what each
refuses, and why, is in docs/app.md, Security and limits).

`BodyLimit` caps request bodies: a declared Content-Length over the limit is refused before anything is read; a
body sent without one (chunked) is counted as it streams in and refused as soon as it passes the limit.
`SameOriginChanges` refuses a request that changes something when a browser says (`Origin`, `Sec-Fetch-Site`) it
comes from another site: a cross-site form POST needs no CORS preflight and passes the Host check.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY = 2 * 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE = frozenset({"same-origin", "none"})


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


def find_cross_site(scope: Scope) -> str | None:
    """Why a state-changing request comes from another site, or None when nothing says so."""
    headers = Headers(scope=scope)
    own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
    origin = headers.get("origin")
    if origin is not None and origin.lower().rstrip("/") != own:
        return f"Origin: expected this app's own origin {own}, found {origin!r}; other sites may not change anything"
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_SITE:
        return f"Sec-Fetch-Site: expected same-origin, found {site!r}; other sites may not change anything"
    return None


class SameOriginChanges:
    """ASGI middleware: 403 for a POST, PUT, PATCH or DELETE that a browser sent from another site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            problem = find_cross_site(scope)
            if problem is not None:
                await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
