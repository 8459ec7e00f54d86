"""Refuse requests that change something when a browser says they come from another site (cross-site request
forgery).

A page elsewhere can make the browser POST a `multipart/form-data` or `text/plain` body here without a CORS
preflight, and its Host is 127.0.0.1, so the Host check lets it through: it could fill the training inbox with
wrong labels. Browsers name the page that sent a request: `Origin` (sent on every cross-origin POST) and
`Sec-Fetch-Site`. A request that is not GET, HEAD or OPTIONS is refused (403, JSON error) when its `Origin` is
not this app's own (scheme, host and port as the request's Host) or its `Sec-Fetch-Site` is neither `same-origin`
nor `none` (typed by the user). A request without either header (curl, scripts) is not a browser's cross-site
one and is answered; the drawing page's own requests are same-origin.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE = frozenset({"same-origin", "none"})


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
