"""The web app's speed: time from `mnist-pipeline app` starting to its first answer, and /api/predict latency.

Starts the real command on a free loopback port against DATA_DIR's champion (from `make run`), posts one drawing
(a 280x280 PNG of a 7, as the page sends it) until the first answer comes, then 1 000 timed requests once warm on
one keep-alive connection, and 1 000 more each on a new connection. Prints one JSON object.

    python bench/bench_app.py --data-dir data
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_cpu
from PIL import Image, ImageDraw

WARMUP = 50


def draw_seven() -> bytes:
    canvas = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(canvas).line([(80, 60), (200, 60), (126, 232)], fill=255, width=18, joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(port: int) -> http.client.HTTPConnection:
    """A client connection with Nagle's algorithm off, as browsers have it: http.client writes the headers and the
    body separately, and on a reused connection the body would wait ~40 ms for the server's delayed ACK."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    return response.status, response.read()


def wait_for_first_answer(port: int, body: bytes, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mnist-pipeline app exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, raw = post(connection, body)
            connection.close()
        except OSError:
            time.sleep(0.01)
            continue
        if status != 200:
            raise RuntimeError(f"/api/predict: expected 200, found {status}: {raw[:300]!r}")
        return json.loads(raw)[0]
    raise TimeoutError(f"no answer within {timeout} s")


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 3), "p99_ms": round(cuts[98], 3), "max_ms": round(max(samples), 3)}


def time_requests(port: int, body: bytes, count: int, keep_alive: bool) -> list[float]:
    samples = []
    connection = connect(port)
    for _ in range(count):
        if not keep_alive:
            connection = connect(port)
        start = time.perf_counter()
        status, _ = post(connection, body)
        samples.append((time.perf_counter() - start) * 1000)
        assert status == 200, status
        if not keep_alive:
            connection.close()
    connection.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="data dir with a cnn champion")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    body = draw_seven()
    port = free_port()
    command = [str(Path(sys.executable).with_name("mnist-pipeline")), "app", "--data-dir", str(args.data_dir)]
    command += ["--reports-dir", tempfile.mkdtemp(prefix="bench-app-reports-"), "--port", str(port)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = wait_for_first_answer(port, body, process, timeout=60)
        ready_s = time.perf_counter() - start
        connection = connect(port)
        for _ in range(WARMUP):
            post(connection, body)
        connection.close()
        kept = time_requests(port, body, args.requests, keep_alive=True)
        fresh = time_requests(port, body, args.requests, keep_alive=False)
    finally:
        process.terminate()
        process.wait(timeout=20)
    result = {
        "cpu": describe_cpu(),
        "model": f"{first['model']} {first['model_key']}",
        "answer": first["label"],
        "start_to_first_answer_s": round(ready_s, 3),
        "requests": args.requests,
        "keep_alive": percentiles(kept),
        "new_connection_each": percentiles(fresh),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
