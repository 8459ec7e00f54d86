"""The app's request guards, as pure ASGI middleware that refuses a request before any endpoint sees it.

`BodyLimit` caps request bodies, so no endpoint ever holds more than the limit in memory: a declared
Content-Length over the limit is refused before anything is read; a body sent without one (chunked) is counted as
it streams in and refused as soon as it passes the limit.

`SameOriginChanges` refuses requests that change something when a browser says they come from another site
(cross-site request forgery). A page elsewhere can make the browser POST a `multipart/form-data` or `text/plain`
body here without a CORS preflight, and its Host is 127.0.0.1, so the Host check lets it through: it could fill
the training inbox with wrong labels. Browsers name the page that sent a request: `Origin` (sent on every
cross-origin POST) and `Sec-Fetch-Site`. A request that is not GET, HEAD or OPTIONS is refused (403, JSON error)
when its `Origin` is not this app's own (scheme, host and port as the request's Host) or its `Sec-Fetch-Site` is
neither `same-origin` nor `none` (typed by the user). A request without either header (curl, scripts) is not a
browser's cross-site one and is answered; the drawing page's own requests are same-origin.
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
