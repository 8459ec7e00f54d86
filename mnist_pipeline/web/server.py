"""uvicorn for the web app: a socket bound before start (a busy port is known at once), a keep-alive timeout and
a cap on connections; what that bounds, and what uvicorn leaves unbounded, is in docs/app.md (Security and limits).
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp

KEEP_ALIVE_S = 5
# Far above what the drawing page, a run's report link check and the bench open at once (a browser opens at most 6
# per host), far below the usual file-descriptor limit of 1024.
MAX_CONNECTIONS = 100
# Every response is revalidated (reports' index changes with each run), and never sniffed into another type.
RESPONSE_HEADERS = [("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (0: any free port).

    Its protocol is named (IPPROTO_TCP, not 0 as `socket.create_server` leaves it): asyncio turns Nagle's
    algorithm off only on connections whose socket says TCP. Without that, every response on a reused
    connection (headers and body are two writes) waits ~40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as create_server does: restart at once
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def build_server(
    app: ASGIApp, timeout_keep_alive: int = KEEP_ALIVE_S, max_connections: int = MAX_CONNECTIONS
) -> uvicorn.Server:
    """uvicorn for `app`: no access log (one line per drawing stroke would drown the console), no lifespan."""
    config = uvicorn.Config(
        app,
        timeout_keep_alive=timeout_keep_alive,
        limit_concurrency=max_connections,
        headers=RESPONSE_HEADERS,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config)
