"""Helpers shared by tests: free ports, waiting for servers, stopping processes, synthetic digits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np


def find_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200; fail early if the process serving it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when the test process dies, even by SIGKILL (no orphan servers)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def start_process(
    command: list[str], env: dict[str, str], stdout: IO[str], cwd: Path | None = None
) -> subprocess.Popen:
    """Start a helper process (server, `serve`) whose output goes to a log file and which dies with the tests."""
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
        start_new_session=True,
    )


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate, then kill, the whole process group: children such as served flow runs go too."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)
    _signal_group(process, signal.SIGKILL)


def make_synthetic_digits(rows: int, seed: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights a class-specific 6x6 block, plus noise; balanced labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(rows, side, side), dtype=np.uint8)
    for k in range(10):
        row, col = divmod(k, 4)
        top, left = 2 + row * 8, 2 + col * 6
        images[labels == k, top : top + 6, left : left + 6] = 220
    return images, labels.astype(np.uint8)
