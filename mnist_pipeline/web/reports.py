"""Serve the reports folder at /reports/ on loopback, for the `mnist-report` artifact's link in the Prefect UI.

A browser does not follow a `file://` link from a page served over http, so `make server` starts this beside the
Prefect server: `python -m mnist_pipeline.web.reports --reports-dir reports` on 127.0.0.1, port $MNIST_REPORT_PORT
(default 4201). Starlette's StaticFiles serves regular files inside the folder only (no listings, nothing outside
through `..` or a symlink), for GET and HEAD. Only loopback Host headers are accepted, so a DNS-rebinding page
cannot read metrics.json; --allowed-hosts or $MNIST_REPORT_ALLOWED_HOSTS replaces them.

A run links to $MNIST_REPORT_URL (default http://127.0.0.1:$MNIST_REPORT_PORT) only after checking that it answers
with this run's report file (same size), so a server for another reports folder is not used.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mnist_pipeline import defaults

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 4201
PORT_ENV, URL_ENV, HOSTS_ENV = "MNIST_REPORT_PORT", "MNIST_REPORT_URL", "MNIST_REPORT_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
REPORTS_PATH = "/reports"
KEEP_ALIVE_S = 5
# Every page is revalidated (the index changes with each run), and never sniffed into another type.
RESPONSE_HEADERS = [("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]


def resolve_port() -> int:
    """$MNIST_REPORT_PORT, else 4201."""
    value = os.environ.get(PORT_ENV, "")
    return int(value) if value.isdigit() else DEFAULT_PORT


def resolve_base_url() -> str:
    """Where runs expect the app: $MNIST_REPORT_URL, else loopback on the report port."""
    return (os.environ.get(URL_ENV) or f"http://{HOST}:{resolve_port()}").rstrip("/")


def parse_hosts(value: str) -> list[str]:
    """`a, b` -> ["a", "b"]."""
    return [host.strip() for host in value.split(",") if host.strip()]


def resolve_allowed_hosts() -> list[str]:
    """The Host values answered: $MNIST_REPORT_ALLOWED_HOSTS (comma-separated), else the loopback names."""
    return parse_hosts(os.environ.get(HOSTS_ENV, "")) or list(LOOPBACK_HOSTS)


async def redirect_to_reports(request: Request) -> RedirectResponse:
    """`/` shows the reports' index until the app has a page of its own."""
    return RedirectResponse(f"{REPORTS_PATH}/")


class ReportFiles(StaticFiles):
    """StaticFiles where a path the OS cannot look up (a symlink loop, say) is not found rather than a server error."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        try:
            return super().lookup_path(path)
        except OSError:
            return "", None


def build_app(reports_dir: Path, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> Starlette:
    """The app: `reports_dir` under /reports/ (a folder's index.html for the folder), for the `allowed_hosts`."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    return Starlette(
        routes=[
            Route("/", redirect_to_reports),
            Mount(REPORTS_PATH, ReportFiles(directory=reports_dir, html=True)),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
    )


def build_server(app: Starlette, timeout_keep_alive: int = KEEP_ALIVE_S) -> uvicorn.Server:
    """uvicorn for `app`: an idle keep-alive connection is closed after `timeout_keep_alive` seconds."""
    config = uvicorn.Config(app, timeout_keep_alive=timeout_keep_alive, headers=RESPONSE_HEADERS)
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: any free port), so a busy port is known before the server starts."""
    return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)


def find_report_url(reports_dir: Path, report_path: Path, timeout: float = 2.0) -> str | None:
    """The report's http URL when the app answers with this very file; None when it does not."""
    relative = report_path.resolve().relative_to(reports_dir.resolve())
    url = f"{resolve_base_url()}{REPORTS_PATH}/{urllib.parse.quote(relative.as_posix())}"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            served_size = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.info("no report server at %s (%s): the report artifact names the file instead", url, exc)
        return None
    if served_size != str(report_path.stat().st_size):
        logger.info("%s serves another file than %s: the report artifact names the file instead", url, report_path)
        return None
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_pipeline.web.reports", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reports-dir", type=Path, default=defaults.REPORTS_DIR, help="folder to serve (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=resolve_port(), help=f"port (default: ${PORT_ENV} or 4201)")
    parser.add_argument("--host", default=HOST, help="address to listen on (default: %(default)s, loopback)")
    parser.add_argument(
        "--allowed-hosts",
        type=parse_hosts,
        default=resolve_allowed_hosts(),
        help=f"comma-separated Host header values to answer (default: ${HOSTS_ENV} or {','.join(LOOPBACK_HOSTS)})",
    )
    args = parser.parse_args(argv)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(
            f"report-server: error: --port {args.port}: expected a free port on {args.host}, found: {exc}",
            file=sys.stderr,
        )
        return 2
    print(f"reports in {args.reports_dir.resolve()} at http://{args.host}:{args.port}{REPORTS_PATH}/", flush=True)
    build_server(build_app(args.reports_dir, args.allowed_hosts)).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
