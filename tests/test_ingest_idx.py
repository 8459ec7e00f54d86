"""The `idx:DIR` source: plain and gzipped IDX files, both naming styles, any shape, and every format error."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mnist_pipeline.data.idx import read_idx, read_idx_stream
from mnist_pipeline.data.sources.local import load_idx_dir
from mnist_pipeline.errors import DataFormatError

# A deliberately non-MNIST dataset: 8x6 images, labels that are not 0..9, 50 train / 20 test.
HEIGHT, WIDTH, N_TRAIN, N_TEST = 8, 6, 50, 20
LABEL_SET = np.array([3, 17, 42, 200], dtype=np.uint8)
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    """Encode a uint8 array as IDX: 0x0000, type 0x08, ndim, big-endian dims, then the data."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + dims + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def synthetic_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (N_TRAIN, HEIGHT, WIDTH), dtype=np.uint8),
        "train_labels": rng.choice(LABEL_SET, N_TRAIN),
        "test_images": rng.integers(0, 256, (N_TEST, HEIGHT, WIDTH), dtype=np.uint8),
        "test_labels": rng.choice(LABEL_SET, N_TEST),
    }


def file_name(key: str, dotted: bool, gz: bool) -> str:
    stem = STEMS[key].replace("-idx", ".idx") if dotted else STEMS[key]
    return stem + (".gz" if gz else "")


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], dotted: bool = False, gz: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        data = idx_bytes(array)
        (directory / file_name(key, dotted, gz)).write_bytes(gzip.compress(data) if gz else data)
    return directory


def assert_matches(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    dataset = load_idx_dir(directory)
    for split in ("train", "test"):
        got = dataset.split(split)
        assert got.images.dtype == np.uint8
        assert got.images.shape == arrays[f"{split}_images"].shape
        np.testing.assert_array_equal(got.images, arrays[f"{split}_images"])
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.labels, arrays[f"{split}_labels"].astype(np.int64))
    assert dataset.source == "idx"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dotted", [False, True], ids=["dash-idx", "dot-idx"])
def test_idx_dir_loads_every_naming_and_compression(tmp_path: Path, dotted: bool, gz: bool) -> None:
    arrays = synthetic_arrays()
    write_idx_dir(tmp_path / "idx", arrays, dotted=dotted, gz=gz)
    assert_matches(tmp_path / "idx", arrays)


def test_idx_dir_mixed_gzip_and_naming(tmp_path: Path) -> None:
    arrays = synthetic_arrays(seed=1)
    directory = tmp_path / "idx"
    directory.mkdir()
    for i, (key, array) in enumerate(arrays.items()):
        gz, dotted = bool(i % 2), i >= 2
        data = idx_bytes(array)
        (directory / file_name(key, dotted, gz)).write_bytes(gzip.compress(data) if gz else data)
    assert_matches(directory, arrays)


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    """A gzipped file without `.gz` (as some mirrors ship) is still read."""
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)


def test_idx_dir_ingests_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays = synthetic_arrays()  # every class present: `ingest` publishes only data that passes validation
    arrays.update(train_labels=np.arange(N_TRAIN) % 10, test_labels=np.arange(N_TEST) % 10)
    write_idx_dir(tmp_path / "idx", arrays, gz=True)
    directory, data_dir = tmp_path / "idx", tmp_path / "data"
    code = main(
        ["ingest", "--source", f"idx:{directory}", "--image-shape", f"{HEIGHT}x{WIDTH}", "--data-dir", str(data_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"train={N_TRAIN}" in out and f"test={N_TEST}" in out
    assert (tmp_path / "data" / "parquet" / "train.parquet").is_file()


def test_parse_idx_refuses_short_header() -> None:
    with pytest.raises(DataFormatError, match=r"mem: expected an IDX header of at least 4 bytes, found 2"):
        read_idx_stream(io.BytesIO(b"\x00\x00"), "mem")


def test_parse_idx_refuses_header_cut_inside_dims() -> None:
    with pytest.raises(DataFormatError, match=r"mem: expected 16 header bytes for 3 dims, found 9"):
        read_idx_stream(io.BytesIO(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0])), "mem")


# Each case breaks one file of a good directory and returns (the file the message must name, expected text).
def _truncated_gzip(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("train_images", False, True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, "truncated or corrupt"


def _not_gzip(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("test_images", False, True)
    path.write_bytes(idx_bytes(synthetic_arrays()["test_images"]))
    return path, "expected gzip data"


def _empty_gz(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("test_labels", False, True)
    path.write_bytes(b"")
    return path, "found an empty file"


def _wrong_magic(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("train_labels", False, True)
    path.write_bytes(gzip.compress(idx_bytes(synthetic_arrays()["train_labels"], magic=b"\x00\x00\x0d\x01")))
    return path, "expected IDX magic 0x0000 08 0N"


def _size_mismatch(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("test_images", False, True)
    path.write_bytes(gzip.compress(idx_bytes(synthetic_arrays()["test_images"])[:-7]))
    return path, f"header declares shape ({N_TEST}, {HEIGHT}, {WIDTH}) = {N_TEST * HEIGHT * WIDTH} bytes"


def _count_mismatch(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("train_labels", False, True)
    path.write_bytes(gzip.compress(idx_bytes(synthetic_arrays()["train_labels"][:-1])))
    return directory / file_name("train_images", False, True), f"({N_TRAIN - 1}), found {N_TRAIN} images"


def _images_not_3d(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("train_images", False, True)
    path.write_bytes(gzip.compress(idx_bytes(synthetic_arrays()["train_images"].reshape(N_TRAIN, -1))))
    return path, "expected images of shape (n, height, width)"


def _missing_file(directory: Path) -> tuple[Path, str]:
    path = directory / file_name("test_labels", False, True)
    path.unlink()
    return directory, "expected an IDX file named t10k-labels-idx1-ubyte"


def _missing_dir(directory: Path) -> tuple[Path, str]:
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    return directory, "found no such directory"


BREAKERS: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "truncated-gzip": _truncated_gzip,
    "not-gzip-named-gz": _not_gzip,
    "empty-gz": _empty_gz,
    "wrong-magic": _wrong_magic,
    "header-data-size-mismatch": _size_mismatch,
    "image-label-count-mismatch": _count_mismatch,
    "images-not-3d": _images_not_3d,
    "missing-file": _missing_file,
    "missing-directory": _missing_dir,
}


@pytest.mark.parametrize("breaker", BREAKERS.values(), ids=BREAKERS.keys())
def test_broken_idx_raises_data_format_error_naming_the_file(
    tmp_path: Path, breaker: Callable[[Path], tuple[Path, str]]
) -> None:
    directory = write_idx_dir(tmp_path / "idx", synthetic_arrays(), gz=True)
    named, expected = breaker(directory)
    with pytest.raises(DataFormatError) as info:
        load_idx_dir(directory)
    message = str(info.value)
    assert message.startswith(f"{named}:"), message
    assert expected in message


@pytest.mark.parametrize("breaker", BREAKERS.values(), ids=BREAKERS.keys())
def test_broken_idx_through_cli_is_one_line_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breaker: Callable[[Path], tuple[Path, str]]
) -> None:
    directory = write_idx_dir(tmp_path / "idx", synthetic_arrays(), gz=True)
    named, expected = breaker(directory)
    code = main(["ingest", "--source", f"idx:{directory}", "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(named) in lines[0] and expected in lines[0]
    assert not (tmp_path / "data" / "parquet").exists()


def mnist_like_arrays(height: int, width: int) -> dict[str, np.ndarray]:
    """A consistent IDX dataset of one image size, labels 0..9."""
    rng = np.random.default_rng(3)
    return {
        "train_images": rng.integers(0, 256, (N_TRAIN, height, width), dtype=np.uint8),
        "train_labels": np.arange(N_TRAIN, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (N_TEST, height, width), dtype=np.uint8),
        "test_labels": np.arange(N_TEST, dtype=np.uint8) % 10,
    }


def test_a_consistent_27x28_dataset_is_refused_unless_declared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_idx_dir(tmp_path / "idx", mnist_like_arrays(27, 28))
    data_dir = tmp_path / "data"
    assert main(["ingest", "--source", f"idx:{directory}", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mnist-pipeline: error: {directory}: expected train images of 28x28 pixels, found 27x28 "
        "(declare another size with --image-shape 27x28)\n"
    )
    assert not (data_dir / "parquet").exists() and not (data_dir / "datasets").exists()  # only the lock file

    assert main(["ingest", "--source", f"idx:{directory}", "--image-shape", "27x28", "--data-dir", str(data_dir)]) == 0
    manifest = json.loads((data_dir / "parquet" / "manifest.json").read_text())
    assert manifest["image_shape"] == [27, 28]
    assert main(["validate", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert main(["validate", "--image-shape", "28x28", "--data-dir", str(data_dir)]) == 2
    assert "train: height 27 found in 50 rows" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["28", "28x", "0x28", "28*28", "28x0"])
def test_a_malformed_image_shape_is_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    directory = write_idx_dir(tmp_path / "idx", mnist_like_arrays(28, 28))
    assert main(["ingest", "--source", f"idx:{directory}", "--image-shape", bad, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnist-pipeline: error: image_shape (--image-shape): expected") and err.count("\n") == 1
