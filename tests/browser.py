"""Headless Chromium for the browser tests: finding it, and driving a page over the DevTools protocol.

The Prefect UI is a JavaScript app that fetches its data after load, so a test must wait in a live page until
the content is there and then ask the DOM (images decoded, their sizes); `--dump-dom` alone cannot tell whether an
image rendered. The protocol needs only a websocket client (`websockets`, which Prefect already depends on).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def require_chromium() -> str:
    """The Chromium binary; skipped with the reason where there is none, but a failure in CI (`CI=true`)."""
    binary = find_chromium()
    if binary is None:
        reason = "no Chromium found (looked for `chromium` on PATH and /usr/bin/chromium): apt-get install chromium"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}; .ci/run installs it", pytrace=False)
        pytest.skip(reason)
    return binary


class Page:
    """One browser tab driven over the DevTools protocol: navigate, evaluate, screenshot."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events that arrive meanwhile are dropped)."""
        command_id = next(self.ids)
        self.socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its last value (falsy on timeout)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page navigated while evaluating (its context was destroyed): ask again
                value = None
            if value:
                return value
            time.sleep(0.5)
        return value

    def screenshot(self, path: Path) -> Path:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path


def read_devtools_port(profile: Path, process: subprocess.Popen, timeout: float = 60) -> int:
    """Chromium writes the port it chose for `--remote-debugging-port=0` into the profile directory."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before opening DevTools")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.2)
    raise TimeoutError(f"chromium wrote no {marker} within {timeout} s")


@contextlib.contextmanager
def open_page(binary: str, profile: Path, width: int, height: int, log: Path) -> Iterator[Page]:
    """A fresh headless Chromium (own profile) and its first tab; the browser is stopped afterwards."""
    from websockets.sync.client import connect

    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)
    command = [
        binary,
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port = read_devtools_port(profile, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        url = next(target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page")
        with connect(url, max_size=None, open_timeout=30) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
