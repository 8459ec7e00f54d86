"""Local sources: a directory of the four IDX files, or an `.npz` with x/y train/test arrays."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from mnist_pipeline.data.dataset import RawDataset, make_split
from mnist_pipeline.data.idx import read_idx
from mnist_pipeline.errors import DataFormatError

# Standard stems; each may also appear with "." instead of the last "-" and with or without ".gz".
IDX_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _find_idx_file(directory: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")
    candidates = [directory / f"{name}{ext}" for name in (stem, dotted) for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataFormatError(
        f"{directory}: expected an IDX file named {stem} or {stem}.gz, found none "
        f"(directory has: {', '.join(sorted(p.name for p in directory.iterdir())) or 'nothing'})"
    )


def find_idx_files(directory: Path) -> list[Path]:
    """The four IDX files `load_idx_dir` reads, in a fixed order."""
    return [_find_idx_file(directory, stem) for stem in IDX_STEMS.values()]


def load_idx_dir(directory: Path) -> RawDataset:
    """Load the four standard IDX files from `directory` (plain or gzipped)."""
    if not directory.is_dir():
        found = "a file" if directory.exists() else "no such directory"
        raise DataFormatError(f"{directory}: expected a directory of IDX files, found {found}")
    paths = {key: _find_idx_file(directory, stem) for key, stem in IDX_STEMS.items()}
    splits = {}
    for split in ("train", "test"):
        images_path, labels_path = paths[(split, "images")], paths[(split, "labels")]
        splits[split] = make_split(read_idx(images_path), read_idx(labels_path), str(images_path), str(labels_path))
    return RawDataset(train=splits["train"], test=splits["test"], source="idx", origin=str(directory))


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read the four MNIST arrays from an `.npz` without ever unpickling."""
    if path.is_file() and not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            start = handle.read(8)
        raise DataFormatError(f"{path}: expected an .npz (zip) archive, found a file starting with {start!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DataFormatError(
                    f"{path}: expected arrays {', '.join(NPZ_KEYS)}, found {', '.join(archive.files) or 'none'}"
                )
            return {key: archive[key] for key in NPZ_KEYS}
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected an .npz file, found no such file") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: expected a complete .npz (zip) archive, found a corrupt one ({exc})") from exc
    except ValueError as exc:
        raise DataFormatError(f"{path}: expected plain numeric arrays, found {exc}") from exc


def load_npz(path: Path, source: str = "npz") -> RawDataset:
    """Load a dataset from an `.npz` holding x_train, y_train, x_test, y_test."""
    arrays = read_npz_arrays(path)
    train = make_split(arrays["x_train"], arrays["y_train"], f"{path}:x_train", f"{path}:y_train")
    test = make_split(arrays["x_test"], arrays["y_test"], f"{path}:x_test", f"{path}:y_test")
    return RawDataset(train=train, test=test, source=source, origin=str(path))
