"""Which Prefect API a flow-starting command reports to: `make run`'s server when it answers and nothing else is
set, else Prefect's own choice (the environment's PREFECT_API_URL, or ephemeral mode)."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import LOCAL_SERVER_OPT_OUT, choose_local_server, server_answers
from tests.support import find_free_port


def _never(url: str) -> bool:
    raise AssertionError(f"probed {url}, expected no probe")


@pytest.mark.parametrize("environ", [{"PREFECT_API_URL": "http://elsewhere:4200/api"}, {LOCAL_SERVER_OPT_OUT: "off"}])
def test_an_api_url_or_the_opt_out_keeps_prefects_choice_without_probing(environ: dict[str, str]) -> None:
    assert choose_local_server(environ, _never) is None


@pytest.mark.parametrize("value", ["0", "OFF", "false", "no"])
def test_opt_out_spellings(value: str) -> None:
    assert choose_local_server({LOCAL_SERVER_OPT_OUT: value}, _never) is None


def test_the_local_server_is_chosen_only_when_it_answers() -> None:
    probed: list[str] = []

    def answers(url: str) -> bool:
        probed.append(url)
        return url.endswith(":4300/api")

    assert choose_local_server({"PREFECT_PORT": "4300"}, answers) == "http://127.0.0.1:4300/api"
    assert choose_local_server({}, answers) is None  # the default port, 4200, did not answer
    assert choose_local_server({LOCAL_SERVER_OPT_OUT: "on"}, answers) is None
    assert probed == ["http://127.0.0.1:4300/api", "http://127.0.0.1:4200/api", "http://127.0.0.1:4200/api"]


class _Health(http.server.BaseHTTPRequestHandler):
    """Prefect's /api/health answer (`true`), and another service's page at /other/health."""

    def do_GET(self) -> None:
        known = self.path in ("/api/health", "/other/health")
        self.send_response(200 if known else 404)
        self.end_headers()
        self.wfile.write(b"true" if self.path == "/api/health" else b"<html>not Prefect</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_server_answers_probes_health(health_server: str) -> None:
    assert server_answers(health_server)
    assert not server_answers(f"http://127.0.0.1:{find_free_port()}/api")  # refused
    assert not server_answers(health_server.removesuffix("/api") + "/missing")  # 404
    assert not server_answers(health_server.removesuffix("/api") + "/other")  # 200, but not Prefect's answer


def test_a_server_that_never_answers_costs_the_probe_timeout_only() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never answers
        started = time.monotonic()
        assert not server_answers(f"http://127.0.0.1:{silent.getsockname()[1]}/api", timeout=0.3)
        assert time.monotonic() - started < 2


def test_commands_choose_before_prefect_is_imported() -> None:
    """Prefect reads PREFECT_API_URL once, when imported: what the CLI imports before `connect_prefect_api` (the
    CLI itself, `add-data`'s readers, `serve`'s schedule checks) must not import Prefect, or the choice is lost."""
    code = (
        "import sys, cli.main, flows.deploy, mnist_pipeline.increments.inbox, mnist_pipeline.increments.sources;"
        "print('prefect' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_a_command_without_api_url_reports_to_the_local_server(prefect_server: str, tmp_path: Path) -> None:
    """`add-data --pending` (a flow) typed with no PREFECT_API_URL runs against the server on PREFECT_PORT, not in
    ephemeral mode: the flow run is in that server's history."""
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.pop(LOCAL_SERVER_OPT_OUT, None)
    env["PREFECT_PORT"] = prefect_server.removesuffix("/api").rpartition(":")[2]
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # an ephemeral run would leave its database here
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "cli.main", "add-data", "--pending", "--data-dir", str(data_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"using the server at {prefect_server}" in done.stderr
    query = {"flow_runs": {"name": {"like_": "gate-"}}, "sort": "START_TIME_DESC", "limit": 50}
    request = urllib.request.Request(
        f"{prefect_server}/flow_runs/filter",
        data=json.dumps(query).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        runs = json.load(response)
    assert any(run["parameters"].get("data_dir") == str(data_dir.resolve()) for run in runs)
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()
