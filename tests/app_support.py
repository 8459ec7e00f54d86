"""For the web app's tests: champions made of tiny ONNX graphs, and the app on a real uvicorn in a thread.

A test champion is an ONNX model whose logits do not depend on the image: it always answers one digit. Two of
them, answering different digits, show which engine answered, with no training; the engine, registry and
preprocessing they go through are the real ones.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from mnist_pipeline.champion.registry import force_promote
from mnist_pipeline.champion.rule import Candidate
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.modeling.calibration import Calibration, calibration_file, save_calibration
from mnist_pipeline.web.app import build_app
from mnist_pipeline.web.server import MAX_CONNECTIONS, bind, build_server

MODEL = "cnn"


def write_constant_model(path: Path, digit: int) -> Path:
    """An ONNX classifier of uint8 (n, 28, 28) images whose logits always favour `digit`."""
    bias = np.full(10, -4.0, dtype=np.float32)
    bias[digit] = 4.0
    bias[(digit + 1) % 10] = 1.0
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", ["pixels", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["zeros"]),
            helper.make_node("Add", ["zeros", "bias"], ["logits"]),
        ],
        "constant",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["n", 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])],
        [
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(np.zeros((784, 10), dtype=np.float32), "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def promote_constant_model(data_dir: Path, digit: int, at: str, temperature: float = 0.5) -> str:
    """Make a model that always answers `digit` the `cnn` champion of `data_dir`; returns its key. Its calibration
    has no held-out images, so each image is judged alone: at T = 0.5 it answers (probability 0.9975), at T = 1
    it is not sure (0.950, under the 0.995 a 0.5 % target needs)."""
    layout = DataLayout(data_dir)
    key = f"{digit:x}" * 24
    model_file = layout.model_file(MODEL, key)
    write_constant_model(model_file.with_suffix(".onnx"), digit)
    save_calibration(Calibration(temperature, 0, None, None, ()), calibration_file(model_file))
    candidate = Candidate(key, str(model_file), f"run-{digit}", "f" * 64, 100, 0.5, (0.5,) * 10)
    force_promote(layout.registry, MODEL, candidate, f"always {digit}", at)
    return key


def draw_png(points: list[tuple[float, float]], size: int = 280, width: int = 18, ink: int = 255) -> bytes:
    """A PNG of a polyline (ink on the opposite background), as the drawing page sends it."""
    canvas = Image.new("L", (size, size), 255 - ink)
    if points:
        ImageDraw.Draw(canvas).line(points, fill=ink, width=width, joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


SEVEN = [(70.0, 60.0), (210.0, 60.0), (120.0, 230.0)]


@contextlib.contextmanager
def serving(
    data_dir: Path, reports_dir: Path, keep_alive: int = 1, max_connections: int = MAX_CONNECTIONS, **options: Any
) -> Iterator[int]:
    """The app on uvicorn in a thread on a free loopback port; stopped as uvicorn documents (should_exit)."""
    sock = bind("127.0.0.1", 0)
    app = build_app(DataLayout(data_dir), reports_dir, **options)
    server = build_server(app, timeout_keep_alive=keep_alive, max_connections=max_connections)
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


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request, the path sent exactly as given (http.client does not normalise `..`)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    result = response.status, {key.lower(): value for key, value in response.getheaders()}, response.read()
    connection.close()
    return result
