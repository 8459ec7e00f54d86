"""The report server: the Starlette app on a real uvicorn on a free loopback port, and how a run decides to link."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_pipeline.web.reports import bind, build_app, build_server, find_report_url, main, resolve_allowed_hosts
from tests.support import find_free_port

KEEP_ALIVE_S = 1


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    (root / "runs" / "run-1").mkdir(parents=True)
    (root / "runs" / "run-1" / "report.html").write_text("<h1>run-1</h1>")
    (root / "index.html").write_text("<h1>index</h1>")
    (tmp_path / "secret.txt").write_text("not for the browser")
    (root / "runs" / "escape.html").symlink_to(tmp_path / "secret.txt")
    (root / "runs" / "outside").symlink_to(tmp_path, target_is_directory=True)
    (root / "runs" / "inside.html").symlink_to(root / "runs" / "run-1" / "report.html")
    (root / "runs" / "loop").symlink_to(root / "runs" / "loop")
    return root


@contextlib.contextmanager
def serving(reports: Path, allowed_hosts: list[str] | None = None) -> Iterator[int]:
    """uvicorn serving the app in a thread on a free loopback port; stopped as uvicorn documents (should_exit)."""
    sock = bind("127.0.0.1", 0)
    app = build_app(reports) if allowed_hosts is None else build_app(reports, allowed_hosts)
    server = build_server(app, timeout_keep_alive=KEEP_ALIVE_S)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture()
def server(reports: Path) -> Iterator[int]:
    with serving(reports) as port:
        yield port


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request, the path sent exactly as given (http.client does not normalise `..`)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    result = response.status, {key.lower(): value for key, value in response.getheaders()}, response.read()
    connection.close()
    return result


def test_serves_reports_and_the_index(server: int) -> None:
    status, headers, body = request(server, "GET", "/reports/runs/run-1/report.html")
    assert (status, body) == (200, b"<h1>run-1</h1>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert request(server, "GET", "/reports/")[2] == b"<h1>index</h1>"
    status, headers, _ = request(server, "GET", "/")
    assert (status, headers["location"]) == (307, "/reports/")


def test_a_symlink_that_stays_inside_is_served(server: int) -> None:
    assert request(server, "GET", "/reports/runs/inside.html")[:3:2] == (200, b"<h1>run-1</h1>")


@pytest.mark.parametrize(
    "path",
    [
        "/reports/../secret.txt",
        "/reports/runs/../../secret.txt",
        "/reports/runs/%2e%2e/%2e%2e/secret.txt",
        "/reports/runs/..%2f..%2fsecret.txt",
        "/reports/%2e%2e%2fsecret.txt",
        "/reports/runs/escape.html",
        "/reports/runs/outside/secret.txt",
        "/reports/runs/loop",
        "/reports/runs/" + "a" * 300,
        "/reports/runs/" + "a" * 300 + "/report.html",
        "/reports/%00",
        "/reports//etc/passwd",
        "/reports/runs/",
        "/reports/runs",
        "/reports/runs/run-1/missing.html",
        "/secret.txt",
    ],
)
def test_every_bad_path_is_a_4xx_and_nothing_outside_is_served(server: int, path: str) -> None:
    status, _, body = request(server, "GET", path)
    assert 400 <= status < 500, status
    assert b"not for the browser" not in body
    assert b"<h1>" not in body  # no listing, no index in place of a folder without one


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_reading_methods_are_answered(server: int, method: str) -> None:
    status, headers, _ = request(server, method, "/reports/runs/run-1/report.html")
    assert (status, headers["allow"]) == (405, "GET, HEAD")


def test_head_gives_the_length_and_no_body(server: int, reports: Path) -> None:
    status, headers, body = request(server, "HEAD", "/reports/runs/run-1/report.html")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str((reports / "runs" / "run-1" / "report.html").stat().st_size)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", ""])
def test_other_host_headers_are_refused(server: int, host: str) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: it must not read the reports."""
    status, _, body = request(server, "GET", "/reports/runs/run-1/report.html", headers={"Host": host})
    assert status == 400
    assert b"run-1" not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:4201", "LOCALHOST", "[::1]:4201"])
def test_loopback_host_headers_are_answered(server: int, host: str) -> None:
    assert request(server, "GET", "/reports/", headers={"Host": host})[0] == 200


def test_configured_hosts_replace_the_loopback_ones(reports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_REPORT_ALLOWED_HOSTS", "reports.lan, *.example.org")
    assert resolve_allowed_hosts() == ["reports.lan", "*.example.org"]
    with serving(reports, resolve_allowed_hosts()) as port:
        assert request(port, "GET", "/reports/", headers={"Host": "reports.lan:4201"})[0] == 200
        assert request(port, "GET", "/reports/", headers={"Host": "a.example.org"})[0] == 200
        assert request(port, "GET", "/reports/", headers={"Host": "localhost"})[0] == 400


def test_an_idle_keep_alive_connection_is_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"GET /reports/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"<h1>index</h1>" not in received:
            received += sock.recv(4096)
        start = time.monotonic()
        assert sock.recv(4096) == b""  # the server closed it
        assert time.monotonic() - start < KEEP_ALIVE_S + 3


def test_idle_connections_do_not_starve_the_server(server: int) -> None:
    """uvicorn keeps a connection that never sends a request open (its keep-alive timer starts after a response),
    but on asyncio each costs a socket, not a thread: requests are still answered at once."""
    idle = [socket.create_connection(("127.0.0.1", server), timeout=10) for _ in range(100)]
    try:
        idle[0].sendall(b"GET /reports/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and one that never ends its headers
        start = time.monotonic()
        assert request(server, "GET", "/reports/runs/run-1/report.html")[0] == 200
        assert time.monotonic() - start < 2
    finally:
        for sock in idle:
            sock.close()


def test_a_busy_port_is_one_line_and_exit_2(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        assert main(["--reports-dir", str(reports), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"report-server: error: --port {port}: expected a free port on 127.0.0.1, found: ")


def test_run_links_only_to_a_server_with_its_report(
    server: int, reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = reports / "runs" / "run-1" / "report.html"
    monkeypatch.setenv("MNIST_REPORT_URL", f"http://127.0.0.1:{server}/")
    assert find_report_url(reports, report) == f"http://127.0.0.1:{server}/reports/runs/run-1/report.html"
    # Another reports dir with a same-named run: the server answers with a different file, so no link.
    other = tmp_path / "other"
    (other / "runs" / "run-1").mkdir(parents=True)
    (other / "runs" / "run-1" / "report.html").write_text("<h1>another run-1, longer</h1>")
    assert find_report_url(other, other / "runs" / "run-1" / "report.html") is None


def test_no_link_when_no_server_answers(reports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_REPORT_URL", f"http://127.0.0.1:{find_free_port()}")
    assert find_report_url(reports, reports / "runs" / "run-1" / "report.html") is None
