"""Prefect's temporary API server, started before the flow's imports instead of after them.

Without PREFECT_API_URL, Prefect starts a temporary server on the first API call: the CLI process first imports
the flow (Prefect, pandas, ...), then imports Prefect's whole server package only to launch it as a child process,
then waits for the child to boot (and, on a new PREFECT_HOME, to create its database). Measured on a 2-core
machine, that import alone was ~6 s under load. Starting the server process first (uvicorn with the app and
settings of Prefect's own `SubprocessASGIServer`, plus the two below) lets it boot while the CLI imports the flow,
and the CLI never imports the server package. Nothing the CLI calls here imports Prefect.

Run as a module, this file is the server's process (`serve`): it first gives a new PREFECT_HOME its database from
the template `make install` builds (flows/database_template.py), then runs uvicorn.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from mnist_pipeline.errors import PipelineError

log = logging.getLogger("mnist_pipeline.temporary_server")

# What Prefect sets for its own temporary server: no UI, ephemeral-server behaviour (no background services).
# Also: no block-type registration (1.5 s on a new database; a run uses no blocks) and no memo of it, so a lasting
# `prefect server start` on the same PREFECT_HOME still registers the block types its UI lists. Prefect's
# current setting names; their older spellings are removed from the server's environment (`_server_env`).
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "0",
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "0",
}
OLDER_SPELLINGS = ("PREFECT_API_BLOCKS_REGISTER_ON_START", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION")
# uvicorn exits with 3 when its port was taken between choosing it and binding it (another process won the race).
PORT_TAKEN = 3


def find_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in OLDER_SPELLINGS}
    return {**env, **SERVER_ENV}


def _launch(port: int) -> subprocess.Popen[bytes]:
    # This module run as the server's process (`serve`): -P keeps a `flows/` folder in the working directory from
    # standing in for this package.
    command = [
        sys.executable,
        "-P",
        "-m",
        "flows.temporary_server",
        "--factory",
        "prefect.server.api.server:create_app",
    ]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]
    return subprocess.Popen(command, env=_server_env())


class TemporaryServer:
    """A Prefect API server child process on a free loopback port; `wait` blocks until it answers."""

    def __init__(self) -> None:
        self.port = find_free_port()
        self.process = _launch(self.port)
        self.api_url = f"http://127.0.0.1:{self.port}/api"

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code == PORT_TAKEN:
                # Prefect read PREFECT_API_URL when it was imported, so the server cannot move to another port now.
                raise PipelineError(
                    f"temporary Prefect server: expected port {self.port} free, found it taken (run again)"
                )
            if code is not None:
                raise PipelineError(f"temporary Prefect server: expected it to start, found it exited with {code}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise PipelineError(f"temporary Prefect server on {self.api_url}: expected it to answer within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_temporary_server() -> TemporaryServer | None:
    """With PREFECT_API_URL unset, start a temporary server now and point this process (and the processes it
    starts) at it. With PREFECT_API_URL set, do nothing: that server is used.

    The server stops at interpreter exit, like Prefect's own: registered before Prefect is imported, so it runs
    after Prefect's exit handlers have sent the last logs and events to it (atexit runs in reverse order).
    PREFECT_UI_URL is set empty because the temporary server serves no UI: a run records no UI link then.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = TemporaryServer()
    atexit.register(server.stop)
    log.info(
        "starting a temporary Prefect server on %s (use `make server` for a lasting one with a UI)", server.api_url
    )
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_UI_URL"] = ""
    return server


def serve(uvicorn_args: list[str]) -> None:
    """The server's process: give a new PREFECT_HOME its database from the template, then run uvicorn as Prefect
    runs it (same arguments, same exit codes)."""
    from flows.database_template import find_configured_database, find_template, seed_database

    database, template = find_configured_database(), find_template()
    if database is not None and template is not None:
        seed_database(database, template)
    from uvicorn.main import main as uvicorn_main

    uvicorn_main(uvicorn_args, prog_name="uvicorn")


if __name__ == "__main__":
    serve(sys.argv[1:])
