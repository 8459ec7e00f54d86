"""The web app as a server: the reports folder under /reports/ on a real uvicorn, Host checks, idle connections,
the length of what is sent, `mnist-pipeline app` on a busy port, and how a run decides to link its report."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import ClientDisconnect

from cli.main import main
from mnist_pipeline.web.files import ReportFiles
from mnist_pipeline.web.links import find_report_url, resolve_allowed_hosts
from mnist_pipeline.web.server import bind
from tests.app_support import request, serving
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


@pytest.fixture()
def server(reports: Path, tmp_path: Path) -> Iterator[int]:
    with serving(tmp_path / "data", reports, keep_alive=KEEP_ALIVE_S) as port:
        yield port


def test_serves_reports_and_the_index(server: int) -> None:
    status, headers, body = request(server, "GET", "/reports/runs/run-1/report.html")
    assert (status, body) == (200, b"<h1>run-1</h1>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["content-length"] == str(len(body))
    assert request(server, "GET", "/reports/")[2] == b"<h1>index</h1>"


def test_an_unchanged_report_is_not_sent_again(server: int) -> None:
    _, headers, _ = request(server, "GET", "/reports/runs/run-1/report.html")
    status, _, body = request(
        server, "GET", "/reports/runs/run-1/report.html", headers={"If-None-Match": headers["etag"]}
    )
    assert (status, body) == (304, b"")


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
        "/" + "a" * 300,
        "/static/" + "a" * 300,
        "/reports/%00",
        "/reports//etc/passwd",
        "/reports/runs/",
        "/reports/runs",
        "/reports/runs/run-1/missing.html",
        "/secret.txt",
        "/static/../app.py",
        "/static/",
    ],
)
def test_every_bad_path_is_a_4xx_and_nothing_outside_is_served(server: int, path: str) -> None:
    status, _, body = request(server, "GET", path)
    assert 400 <= status < 500, status
    assert b"not for the browser" not in body
    assert b"<h1>" not in body  # no listing, no index in place of a folder without one
    assert b"build_app" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_reading_methods_are_answered(server: int, method: str) -> None:
    status, headers, _ = request(server, method, "/reports/runs/run-1/report.html")
    assert (status, headers["allow"]) == (405, "GET, HEAD")


def test_head_gives_the_length_and_no_body(server: int, reports: Path) -> None:
    status, headers, body = request(server, "HEAD", "/reports/runs/run-1/report.html")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str((reports / "runs" / "run-1" / "report.html").stat().st_size)


def test_the_length_comes_from_the_file_that_is_sent(reports: Path) -> None:
    """A run replaces latest.html atomically between the lookup's stat and the open: the length and the body sent
    must both be the new file's (StaticFiles alone would declare the old length and send the new body)."""
    page = reports / "index.html"
    before = page.stat()
    replacement = reports / ".index.html.tmp"
    replacement.write_text("<h1>a longer index, written by the next run</h1>")
    replacement.replace(page)
    files = ReportFiles(directory=reports, html=True)
    response = files.file_response(str(page), before, {"type": "http", "method": "GET", "headers": []})
    assert response.headers["content-length"] == str(page.stat().st_size) != str(before.st_size)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", ""])
@pytest.mark.parametrize("path", ["/reports/runs/run-1/report.html", "/", "/api/model"])
def test_other_host_headers_are_refused(server: int, host: str, path: str) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: it must not read the reports or use the API."""
    status, _, body = request(server, "GET", path, headers={"Host": host})
    assert status == 400
    assert b"run-1" not in body
    assert request(server, "POST", "/api/feedback?label=1", b"x", headers={"Host": host})[0] == 400


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:4201", "LOCALHOST", "[::1]:4201"])
def test_loopback_host_headers_are_answered(server: int, host: str) -> None:
    assert request(server, "GET", "/reports/", headers={"Host": host})[0] == 200


def test_configured_hosts_replace_the_loopback_ones(
    reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_REPORT_ALLOWED_HOSTS", "reports.lan, *.example.org")
    assert resolve_allowed_hosts() == ["reports.lan", "*.example.org"]
    with serving(tmp_path / "data", reports, allowed_hosts=resolve_allowed_hosts()) as port:
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


def test_a_reused_connection_answers_at_once(server: int) -> None:
    """Keep-alive requests are not held back by Nagle's algorithm and delayed ACKs (~40 ms each when they are)."""
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(21):
        start = time.perf_counter()
        connection.request("GET", "/reports/runs/run-1/report.html")
        assert connection.getresponse().read() == b"<h1>run-1</h1>"
        times.append(time.perf_counter() - start)
    connection.close()
    assert sorted(times)[10] < 0.02, sorted(times)


def test_idle_connections_are_capped_and_the_server_stays_up(reports: Path, tmp_path: Path) -> None:
    """uvicorn keeps a connection that never sends a request open (its keep-alive timer starts after a response).
    Below the cap they cost a socket each, not a thread: requests are answered at once. At the cap a request is
    refused with a 503 and its connection closed; once they go, requests are answered again."""
    cap = 12
    with serving(tmp_path / "data", reports, max_connections=cap) as port:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(cap - 2)]
        try:
            idle[0].sendall(b"GET /reports/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and one that never ends its headers
            start = time.monotonic()
            assert request(port, "GET", "/reports/runs/run-1/report.html")[0] == 200
            assert request(port, "GET", "/healthz")[0] == 200
            assert time.monotonic() - start < 2
            idle += [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
            time.sleep(0.2)  # let the loop accept them
            status, headers, _ = request(port, "GET", "/healthz")
            assert (status, headers["connection"]) == (503, "close")
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5
        while request(port, "GET", "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "still refusing after the idle connections closed"
            time.sleep(0.1)


def count_open_files() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_a_report_whose_client_left_before_the_body_does_not_leak_its_file(reports: Path) -> None:
    """The client is gone when the response starts (sending fails): the opened report must still be closed."""
    files = ReportFiles(directory=reports, html=True)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/runs/run-1/report.html",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "query_string": b"",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        raise OSError("the client closed the connection")

    async def request_and_leave() -> None:
        with contextlib.suppress(OSError, ClientDisconnect):
            await files(scope, receive, send)

    asyncio.run(request_and_leave())  # the first call imports and opens what it needs once
    before = count_open_files()
    for _ in range(50):
        asyncio.run(request_and_leave())
    assert count_open_files() == before


def test_a_busy_port_is_one_line_and_exit_2(reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        argv = ["app", "--reports-dir", str(reports), "--data-dir", str(tmp_path / "data"), "--port", str(port)]
        assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"mnist-pipeline: error: --port {port}: expected a free port on 127.0.0.1, found: ")


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


def test_a_feedback_batch_below_the_gate_minimum_is_one_line_and_exit_2(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["app", "--reports-dir", str(reports), "--data-dir", str(tmp_path / "data"), "--feedback-batch", "9"]
    assert main([*argv, "--port", str(find_free_port())]) == 2
    error = capsys.readouterr().err
    assert error == (
        "mnist-pipeline: error: --feedback-batch: expected at least 10 corrections (the gate refuses smaller "
        "batches), found 9\n"
    )
