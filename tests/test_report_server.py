"""The report server: a real HTTP server on loopback serving one reports dir, and how a run decides to link to it."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_pipeline.report.server import find_report_url, find_served_file, make_server


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    (root / "runs" / "run-1").mkdir(parents=True)
    (root / "runs" / "run-1" / "report.html").write_text("<h1>run-1</h1>")
    (root / "index.html").write_text("<h1>index</h1>")
    (tmp_path / "secret.txt").write_text("not for the browser")
    (root / "runs" / "escape.html").symlink_to(tmp_path / "secret.txt")
    (root / ".hidden").write_text("dotfile")
    return root


@pytest.fixture()
def server(reports: Path) -> Iterator[int]:
    httpd = make_server(reports, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def request(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return result


def test_server_listens_on_loopback_only(reports: Path) -> None:
    httpd = make_server(reports, 0)
    try:
        assert httpd.server_address[0] == "127.0.0.1"
    finally:
        httpd.server_close()


def test_serves_reports_and_the_index(server: int) -> None:
    status, headers, body = request(server, "GET", "/runs/run-1/report.html")
    assert (status, body) == (200, b"<h1>run-1</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert request(server, "GET", "/")[2] == b"<h1>index</h1>"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/runs/%2e%2e/%2e%2e/secret.txt",
        "/runs/..%2f..%2fsecret.txt",
        "/runs/escape.html",
        "/.hidden",
        "/runs/",
        "/runs/run-1/missing.html",
    ],
)
def test_nothing_outside_the_reports_or_unlisted_is_served(server: int, path: str) -> None:
    status, _, body = request(server, "GET", path)
    assert status == 404
    assert b"not for the browser" not in body


def test_only_reading_methods_are_answered(server: int) -> None:
    assert request(server, "POST", "/runs/run-1/report.html")[0] == 501


def test_find_served_file_stays_inside(reports: Path) -> None:
    root = reports.resolve()
    assert find_served_file(root, "/runs/run-1/report.html?x=1") == root / "runs" / "run-1" / "report.html"
    assert find_served_file(root, "/runs/escape.html") is None
    assert find_served_file(root, "/%00") is None


def test_run_links_only_to_a_server_with_its_report(
    server: int, reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = reports / "runs" / "run-1" / "report.html"
    monkeypatch.setenv("MNIST_REPORT_URL", f"http://127.0.0.1:{server}/")
    assert find_report_url(reports, report) == f"http://127.0.0.1:{server}/runs/run-1/report.html"
    # Another reports dir with a same-named run: the server answers with a different file, so no link.
    other = tmp_path / "other"
    (other / "runs" / "run-1").mkdir(parents=True)
    (other / "runs" / "run-1" / "report.html").write_text("<h1>another run-1, longer</h1>")
    assert find_report_url(other, other / "runs" / "run-1" / "report.html") is None


def test_no_link_when_no_server_answers(reports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import find_free_port

    monkeypatch.setenv("MNIST_REPORT_URL", f"http://127.0.0.1:{find_free_port()}")
    assert find_report_url(reports, reports / "runs" / "run-1" / "report.html") is None
