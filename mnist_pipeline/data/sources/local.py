"""Local sources: a directory of the four IDX files, or an `.npz` with x/y train/test arrays."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from mnist_pipeline.data.dataset import RawDataset, make_split
from mnist_pipeline.data.idx import read_idx
from mnist_pipeline.data.limits import MAX_ARRAY_BYTES, MIB, check_declared_size, count_bytes
from mnist_pipeline.errors import DataFormatError

# Standard stems (train images, train labels, test images, test labels); each may also appear with "." instead of
# the last "-" and with or without ".gz".
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# An .npy member is its header (at most a few KiB; numpy caps it at 10 000 bytes by default) plus its data.
NPY_HEADER = 64 * 1024
READ_CHUNK = 4 * MIB


def _find_idx_file(directory: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")
    for candidate in (directory / f"{name}{ext}" for name in (stem, dotted) for ext in ("", ".gz")):
        if candidate.is_file():
            return candidate
    raise DataFormatError(
        f"{directory}: expected an IDX file named {stem} or {stem}.gz, found none "
        f"(directory has: {', '.join(sorted(p.name for p in directory.iterdir())) or 'nothing'})"
    )


def find_idx_files(directory: Path) -> list[Path]:
    """The four IDX files `load_idx_dir` reads, in a fixed order."""
    return [_find_idx_file(directory, stem) for stem in IDX_STEMS]


def load_idx_dir(directory: Path) -> RawDataset:
    """Load the four standard IDX files from `directory` (plain or gzipped)."""
    if not directory.is_dir():
        found = "a file" if directory.exists() else "no such directory"
        raise DataFormatError(f"{directory}: expected a directory of IDX files, found {found}")
    paths = find_idx_files(directory)
    train, test = (make_split(read_idx(x), read_idx(y), str(x), str(y)) for x, y in (paths[:2], paths[2:]))
    return RawDataset(train=train, test=test, source="idx", origin=str(directory))


def read_npz_arrays(
    path: Path, keys: tuple[str, ...], any_one: bool = False, max_bytes: int = MAX_ARRAY_BYTES
) -> dict[str, np.ndarray]:
    """Arrays of an `.npz`, never unpickled: all of `keys`, or with `any_one` the first of them it holds.

    Read member by member with `zipfile` and numpy's documented `.npy` header readers, not `np.load`: each
    member's declared size and its header's shape and dtype are checked against `max_bytes` before its array is
    allocated, so a small archive that declares a huge array costs nothing."""
    if path.is_file() and not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            start = handle.read(8)
        raise DataFormatError(f"{path}: expected an .npz (zip) archive, found a file starting with {start!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            files = [name.removesuffix(".npy") for name in archive.namelist()]
            present = [key for key in keys if key in files]
            if not present or (len(present) < len(keys) and not any_one):
                expected = f"an array named {' or '.join(keys)}" if any_one else f"arrays {', '.join(keys)}"
                raise DataFormatError(f"{path}: expected {expected}, found {', '.join(files) or 'none'}")
            return {key: _read_member(archive, key, path, max_bytes) for key in (present[:1] if any_one else present)}
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: expected an .npz file, found no such file") from exc
    except KeyError as exc:
        raise DataFormatError(f"{path}: expected .npy members, found {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: expected a complete .npz (zip) archive, found a corrupt one ({exc})") from exc
    except ValueError as exc:
        raise DataFormatError(f"{path}: expected plain numeric arrays, found {exc}") from exc


def _read_member(archive: zipfile.ZipFile, key: str, path: Path, max_bytes: int) -> np.ndarray:
    """One `.npy` member: declared sizes checked first, then read in chunks into one array (no second copy)."""
    info = archive.getinfo(f"{key}.npy")
    check_declared_size(str(path), f"member {info.filename} (header and array)", info.file_size, max_bytes + NPY_HEADER)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise DataFormatError(f"{path}: expected .npy format 1.0 or 2.0, found {version[0]}.{version[1]}")
        shape, fortran, dtype = readers[version](member)
        if dtype.hasobject:
            raise DataFormatError(f"{path}: expected plain numeric arrays, found {key} of dtype {dtype} (needs pickle)")
        size = count_bytes(shape, dtype.itemsize)
        check_declared_size(str(path), f"array {key} (header declares shape {shape}, {dtype})", size, max_bytes)
        flat = np.empty(size, dtype=np.uint8)
        filled = 0
        while filled < size:
            chunk = member.read(min(size - filled, READ_CHUNK))
            if not chunk:
                break
            flat[filled : filled + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            filled += len(chunk)
        if filled < size or member.read(1):
            found = f"{filled} bytes" if filled < size else "more"
            raise DataFormatError(
                f"{path}: array {key}: header declares shape {shape} ({dtype}) = {size} bytes, found {found}"
            )
    array = flat.view(dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def load_npz(path: Path, source: str = "npz") -> RawDataset:
    """Load a dataset from an `.npz` holding x_train, y_train, x_test, y_test."""
    arrays = read_npz_arrays(path, NPZ_KEYS)
    train = make_split(arrays["x_train"], arrays["y_train"], f"{path}:x_train", f"{path}:y_train")
    test = make_split(arrays["x_test"], arrays["y_test"], f"{path}:x_test", f"{path}:y_test")
    return RawDataset(train=train, test=test, source=source, origin=str(path))
