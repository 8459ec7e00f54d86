"""SHA-256 of files and array content: how downloads are verified and datasets are fingerprinted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mnist_pipeline.errors import ChecksumError


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed so large files do not sit in memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def hash_folder_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file directly in `folder`, by name: what a dataset version holds, byte for byte."""
    return {path.name: sha256_file(path) for path in sorted(folder.iterdir()) if path.is_file()}


def verify_sha256(data_or_path: bytes | Path, expected: str, origin: str) -> None:
    """Raise ChecksumError naming `origin` unless the content hashes to `expected`."""
    found = sha256_file(data_or_path) if isinstance(data_or_path, Path) else hashlib.sha256(data_or_path).hexdigest()
    if found != expected:
        raise ChecksumError(f"{origin}: expected sha256 {expected}, found {found}")


def hash_split(images: np.ndarray, labels: np.ndarray) -> str:
    """Hash of one split's content (shape, pixels, labels in row order); independent of file bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"shape": list(images.shape)}).encode())
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    digest.update(np.ascontiguousarray(labels, dtype="<i8").data)
    return digest.hexdigest()


def fingerprint_dataset(split_hashes: dict[str, str]) -> str:
    """Dataset fingerprint: one hash over the per-split content hashes."""
    return hashlib.sha256(json.dumps(split_hashes, sort_keys=True).encode()).hexdigest()
