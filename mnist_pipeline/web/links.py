"""Where the web app is expected, and whether a run may link its report there (docs/app.md): only when the app
answers with this run's report file. No web framework is imported here.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 4201
PORT_ENV, URL_ENV, HOSTS_ENV = "MNIST_REPORT_PORT", "MNIST_REPORT_URL", "MNIST_REPORT_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
REPORTS_PATH = "/reports"


def resolve_port() -> int:
    """$MNIST_REPORT_PORT, else 4201."""
    value = os.environ.get(PORT_ENV, "")
    return int(value) if value.isdigit() else DEFAULT_PORT


def resolve_base_url() -> str:
    """Where runs expect the app: $MNIST_REPORT_URL, else loopback on the app's port."""
    return (os.environ.get(URL_ENV) or f"http://{HOST}:{resolve_port()}").rstrip("/")


def parse_hosts(value: str) -> list[str]:
    """`a, b` -> ["a", "b"]."""
    return [host.strip() for host in value.split(",") if host.strip()]


def resolve_allowed_hosts() -> list[str]:
    """The Host values answered: $MNIST_REPORT_ALLOWED_HOSTS (comma-separated), else the loopback names."""
    return parse_hosts(os.environ.get(HOSTS_ENV, "")) or list(LOOPBACK_HOSTS)


def find_report_url(reports_dir: Path, report_path: Path, timeout: float = 2.0) -> str | None:
    """The report's http URL when the app answers with this very file; None when it does not."""
    relative = report_path.resolve().relative_to(reports_dir.resolve())
    url = f"{resolve_base_url()}{REPORTS_PATH}/{urllib.parse.quote(relative.as_posix())}"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            served_size = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.info("no web app at %s (%s): the report artifact names the file instead", url, exc)
        return None
    if served_size != str(report_path.stat().st_size):
        logger.info("%s serves another file than %s: the report artifact names the file instead", url, report_path)
        return None
    return url
