"""`mnist-pipeline run` refuses bad input before any Prefect work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from mnist_pipeline.errors import PipelineError
from tests.support import find_free_port


def test_unreachable_prefect_api_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    url = f"http://127.0.0.1:{find_free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    code = main(["run", "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"PREFECT_API_URL={url}" in err[0] and "make server" in err[0]
    assert not (tmp_path / "data").exists()


def test_a_server_that_make_run_is_starting_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """With MNIST_PIPELINE_SERVER_WAIT (set by `make run` when it has just started the server), the check waits for
    the server to answer instead of failing at once; without it, no answer is an error at once."""
    import http.server
    import threading
    import time

    from cli.main import SERVER_WAIT, check_prefect_api

    port = find_free_port()
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv(SERVER_WAIT, "0")
    with pytest.raises(PipelineError, match="expected a running Prefect server"):
        check_prefect_api()

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

    servers: list[http.server.ThreadingHTTPServer] = []

    def start_server() -> None:  # nothing listens before: each try until then is refused at once
        servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), Health))
        servers[0].serve_forever()

    timer = threading.Timer(1.5, start_server)
    timer.daemon = True
    timer.start()
    monkeypatch.setenv(SERVER_WAIT, "30")
    started = time.monotonic()
    try:
        check_prefect_api()
    finally:
        timer.cancel()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert 1.5 <= time.monotonic() - started < 30
    monkeypatch.setenv(SERVER_WAIT, "2m")
    with pytest.raises(PipelineError, match=r"MNIST_PIPELINE_SERVER_WAIT \(PREFECT_START_SECONDS\): expected seconds"):
        check_prefect_api()


def test_bad_option_value_fails_before_prefect_starts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--models", "cnn,resnet", "--data-dir", str(tmp_path / "data")])
    assert code == 2
    assert "'resnet'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "61 * * * *"), "--cron: expected a cron expression like '0 3 * * 1', found '61 * * * *'"),
        (("--cron", "every monday"), "--cron: expected a cron expression"),
        (
            ("--timezone", "Mars/Olympus"),
            "--timezone: expected an IANA zone like 'Europe/Berlin', found 'Mars/Olympus'",
        ),
    ],
)
def test_bad_schedule_fails_before_anything_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: tuple[str, ...], message: str
) -> None:
    code = main(["serve", *args, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "data").exists()


def _find_processes_with_home(home: Path) -> list[str]:
    """Ids of the processes whose environment names this PREFECT_HOME (servers left behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(proc.name)
        except OSError:
            continue
    return found


def _run_options(tmp_path: Path, synthetic_npz: Path) -> list[str]:
    options = ["--source", f"npz:{synthetic_npz}", "--models", "ann_no_hidden", "--epochs", "ann_no_hidden=1"]
    return [*options, "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")]


def _read_metrics(stdout: str) -> dict:
    import json

    metrics_line = next(line for line in stdout.splitlines() if line.startswith("metrics: "))
    return json.loads(Path(metrics_line.removeprefix("metrics: ")).read_text())


@pytest.mark.e2e
def test_without_a_server_prefect_runs_a_temporary_one_and_stops_it(tmp_path: Path, synthetic_npz: Path) -> None:
    """Prefect's own ephemeral mode: the run's history lands in the new home's database, no server outlives it."""
    import os
    import sqlite3
    import subprocess
    import sys
    from contextlib import closing

    home = tmp_path / "prefect-home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(home)
    env["MNIST_PIPELINE_LOCAL_SERVER"] = "off"  # not `make run`'s server, should one answer on this machine
    command = [sys.executable, "-m", "cli.main", "run", *_run_options(tmp_path, synthetic_npz)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _read_metrics(done.stdout)["run"]["flow_run_url"] is None  # a temporary server has no UI to link to
    assert "flow run: " not in done.stdout
    with closing(sqlite3.connect(home / "prefect.db")) as database:
        runs = database.execute("SELECT count(*) FROM flow_run").fetchone()[0]
    assert runs >= 2  # this run's history: the flow and its training subflow
    assert _find_processes_with_home(home) == []


@pytest.mark.e2e
def test_make_run_starts_a_lasting_background_server_and_reuses_it(tmp_path: Path, synthetic_npz: Path) -> None:
    """`make run` with no server answering starts a lasting `prefect server start`; the printed flow-run link
    opens after the run, the server outlives it, and a second `make run` uses the same server."""
    import os
    import subprocess
    import urllib.request

    home, port = tmp_path / "prefect-home", find_free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API_URL")}
    env.pop("MAKEFLAGS", None)
    root = Path(__file__).resolve().parents[1]
    # `-o install`: the test runs the environment it is in, never reinstalls it.
    command = ["make", "--no-print-directory", "-C", str(root), "-o", "install", "run"]
    run_args = " ".join(_run_options(tmp_path, synthetic_npz))
    command += [f"PREFECT_HOME={home}", f"PREFECT_PORT={port}", f"RUN_ARGS={run_args}"]
    try:
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
        pid = (home / "mnist-pipeline-server.pid").read_text()
        link = next(line for line in first.stdout.splitlines() if line.startswith("flow run: "))
        url = link.removeprefix("flow run: ")
        assert url.startswith(f"http://127.0.0.1:{port}/")
        # The UI answers a deep link with its page only to a browser's request (one that accepts HTML).
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "text/html"}), timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read()
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
        assert "starting a Prefect server" not in second.stdout
        assert (home / "mnist-pipeline-server.pid").read_text() == pid
        assert _read_metrics(second.stdout)["run"]["flow_run_url"].startswith(f"http://127.0.0.1:{port}/")
    finally:
        stop = ["make", "--no-print-directory", "-C", str(root), f"PREFECT_HOME={home}", "server-stop"]
        subprocess.run(stop, env=env, capture_output=True, timeout=60)


def test_the_command_leaves_the_exit_collection_nothing_to_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    from importlib.metadata import entry_points

    from cli import main as cli

    (command,) = entry_points(group="console_scripts", name="mnist-pipeline")
    assert command.value == "cli.main:console_main"
    monkeypatch.setattr(cli, "main", lambda: 0)
    gc.unfreeze()
    try:
        assert cli.console_main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
