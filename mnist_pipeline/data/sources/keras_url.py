"""The canonical route with internet: Keras' `mnist.npz` over HTTPS, checksummed and cached."""

from __future__ import annotations

import http.client
import logging
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from mnist_pipeline.data.checksums import sha256_file, verify_sha256
from mnist_pipeline.data.dataset import RawDataset
from mnist_pipeline.data.sources.local import load_npz
from mnist_pipeline.errors import SourceUnavailable
from mnist_pipeline.files.atomic import atomic_path

log = logging.getLogger(__name__)

KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def cached_npz_path(raw_dir: Path) -> Path:
    return raw_dir / "keras" / "mnist.npz"


def is_cached(raw_dir: Path) -> bool:
    """True when a verified copy of the Keras archive is already on disk."""
    path = cached_npz_path(raw_dir)
    return path.is_file() and sha256_file(path) == KERAS_MNIST_SHA256


def _download_once(url: str, target: Path, timeout: float) -> None:
    with atomic_path(target) as tmp:
        with tmp.open("wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out)
            received = out.tell()
        # urllib returns a short body silently when the connection drops: that is transient, so retry it.
        if declared is not None and declared.isdigit() and received != int(declared):
            raise ConnectionError(f"connection dropped: expected {declared} bytes, received {received}")
        verify_sha256(tmp, KERAS_MNIST_SHA256, url)


def fetch_keras_npz(raw_dir: Path, attempts: int = 4, timeout: float = 30.0, backoff: float = 1.0) -> Path:
    """Return the cached archive, downloading it (with retries and exponential backoff) when absent."""
    target = cached_npz_path(raw_dir)
    if is_cached(raw_dir):
        return target
    for attempt in range(1, attempts + 1):
        try:
            _download_once(KERAS_MNIST_URL, target, timeout)
            return target
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            permanent = isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500
            if attempt == attempts or permanent:
                raise SourceUnavailable(
                    f"{KERAS_MNIST_URL}: download failed after {attempts} attempt(s): {exc}"
                ) from exc
            delay = backoff * 2 ** (attempt - 1)
            log.warning("download of %s failed (%s); retrying in %.0f s", KERAS_MNIST_URL, exc, delay)
            time.sleep(delay)
    raise SourceUnavailable(f"{KERAS_MNIST_URL}: no download attempted (attempts={attempts})")


def load_keras_url(raw_dir: Path, attempts: int = 4) -> RawDataset:
    """Load MNIST from the (cached) Keras archive."""
    return load_npz(fetch_keras_npz(raw_dir, attempts=attempts), source="url")
