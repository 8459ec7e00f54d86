"""uvicorn for the web app: a socket bound before start (a busy port is known at once), a keep-alive timeout and
a cap on connections.

What is bounded, and what is not, with uvicorn 0.54's public settings:
- An idle keep-alive connection is closed `timeout_keep_alive` seconds after its last response.
- `limit_concurrency` (MAX_CONNECTIONS): once that many connections are open, or requests running, a new request
  is answered 503 (uvicorn's plain-text "Service Unavailable") and its connection closed. So requests in flight,
  and the request bodies they hold (each capped by `guards.BodyLimit`), are bounded, and the server stays up.
- Not bounded: a connection that never sends a whole request. uvicorn starts its timer only once a response is
  complete and has no public setting for a request-header timeout, nor a cap applied when a connection is
  accepted. Each such connection holds one socket (a file descriptor) on the asyncio loop until its client
  closes it; no thread and no task. While MAX_CONNECTIONS of them are open, every request gets the 503 above; at
  the process's file-descriptor limit (`ulimit -n`) asyncio stops accepting for a moment and retries.
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
