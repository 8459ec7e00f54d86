"""Serve reports/ over HTTP on loopback, so the `mnist-report` artifact in the Prefect UI can link to a report.

A browser does not follow a `file://` link from a page served over http, so `make server` starts this next to
the Prefect server: `python -m mnist_pipeline.report.server --reports-dir reports` on 127.0.0.1, port
$MNIST_REPORT_PORT (default 4201). Only regular files below the reports directory are served (no listings, no
`..`, no symlinks leading out), read-only (GET and HEAD).

A run links to the server at $MNIST_REPORT_URL (default http://127.0.0.1:$MNIST_REPORT_PORT) only after checking
that it answers with this run's report file (same size), so a server for another reports directory is not used.
"""

from __future__ import annotations

import argparse
import logging
import mimetypes
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mnist_pipeline import defaults

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 4201
PORT_ENV, URL_ENV = "MNIST_REPORT_PORT", "MNIST_REPORT_URL"


def resolve_port() -> int:
    """$MNIST_REPORT_PORT, else 4201."""
    value = os.environ.get(PORT_ENV, "")
    return int(value) if value.isdigit() else DEFAULT_PORT


def resolve_base_url() -> str:
    """Where runs expect the report server: $MNIST_REPORT_URL, else loopback on the report port."""
    return (os.environ.get(URL_ENV) or f"http://{HOST}:{resolve_port()}").rstrip("/")


def find_served_file(root: Path, url_path: str) -> Path | None:
    """The file under `root` that a request path names, or None when it names nothing servable."""
    parts = [part for part in urllib.parse.unquote(url_path.split("?", 1)[0].split("#", 1)[0]).split("/") if part]
    if any(part in (".", "..") or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    candidate = root.joinpath(*parts)
    if candidate.is_dir():
        candidate = candidate / "index.html"
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_file() and resolved.is_relative_to(root) else None


class ReportHandler(BaseHTTPRequestHandler):
    """GET/HEAD of files below one directory; everything else is refused."""

    server_version = "mnist-report-server"

    def __init__(self, *args: object, root: Path, **kwargs: object) -> None:
        self.root = root
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def send_file_headers(self) -> Path | None:
        path = find_served_file(self.root, self.path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no such report")
            return None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type + ("; charset=utf-8" if content_type.startswith("text/") else ""))
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        return path

    def do_HEAD(self) -> None:
        self.send_file_headers()

    def do_GET(self) -> None:
        path = self.send_file_headers()
        if path is not None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, self.wfile)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"report-server: {format % args}\n")


def make_server(reports_dir: Path, port: int) -> ThreadingHTTPServer:
    """A server bound to loopback only, serving `reports_dir`."""
    root = reports_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return ThreadingHTTPServer((HOST, port), partial(ReportHandler, root=root))


def find_report_url(reports_dir: Path, report_path: Path, timeout: float = 2.0) -> str | None:
    """The report's http URL when the report server answers with this very file; None when it does not."""
    relative = report_path.resolve().relative_to(reports_dir.resolve())
    url = f"{resolve_base_url()}/{urllib.parse.quote(relative.as_posix())}"
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
    parser = argparse.ArgumentParser(prog="python -m mnist_pipeline.report.server", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reports-dir", type=Path, default=defaults.REPORTS_DIR, help="directory to serve (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=resolve_port(), help=f"loopback port (default: ${PORT_ENV} or 4201)"
    )
    args = parser.parse_args(argv)
    try:
        server = make_server(args.reports_dir, args.port)
    except OSError as exc:
        print(
            f"report-server: error: --port {args.port}: expected a free port on {HOST}, found: {exc}", file=sys.stderr
        )
        return 2
    print(f"reports in {args.reports_dir.resolve()} at http://{HOST}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
