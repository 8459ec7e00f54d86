"""The `npz:FILE` source: good archives, missing keys, corruption, float pixels, object arrays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mnist_pipeline.data.sources.local import load_npz
from mnist_pipeline.errors import DataFormatError, PipelineError

N_TRAIN, N_TEST, SIDE = 50, 20, 8


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (N_TRAIN, SIDE, SIDE), dtype=np.uint8),
        "y_train": rng.integers(0, 10, N_TRAIN).astype(np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, SIDE, SIDE), dtype=np.uint8),
        "y_test": rng.integers(0, 10, N_TEST).astype(np.int32),
    }


def save(path: Path, compressed: bool = False, **data: np.ndarray) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, **data)
    return path


@pytest.mark.parametrize("compressed", [False, True], ids=["savez", "savez_compressed"])
def test_good_npz_loads_exactly(tmp_path: Path, compressed: bool) -> None:
    data = arrays()
    dataset = load_npz(save(tmp_path / "d.npz", compressed, **data))
    assert dataset.source == "npz"
    assert dataset.origin == str(tmp_path / "d.npz")
    for split in ("train", "test"):
        got = dataset.split(split)
        assert got.images.dtype == np.uint8 and got.images.shape == data[f"x_{split}"].shape
        np.testing.assert_array_equal(got.images, data[f"x_{split}"])
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.labels, data[f"y_{split}"])


def test_missing_keys_are_named(tmp_path: Path) -> None:
    data = arrays()
    del data["y_test"]
    path = save(tmp_path / "d.npz", **data)
    with pytest.raises(DataFormatError) as info:
        load_npz(path)
    message = str(info.value)
    assert message.startswith(f"{path}: expected arrays x_train, y_train, x_test, y_test")
    assert "found x_train, y_train, x_test" in message


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a zip archive at all" * 10)


def _corrupt_member(path: Path) -> None:
    """Overwrite bytes early in the first member's data: deflate then fails to decode, stored data fails its CRC."""
    data = bytearray(path.read_bytes())
    data[200:264] = bytes(range(64))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("compressed", "damage"),
    [(False, _truncated), (False, _garbage), (True, _corrupt_member), (False, _corrupt_member)],
    ids=["truncated", "garbage", "corrupt-deflate", "corrupt-stored-crc"],
)
def test_corrupt_npz_is_a_data_format_error(tmp_path: Path, compressed: bool, damage) -> None:
    rng = np.random.default_rng(3)
    data = arrays()
    data["x_train"] = rng.integers(0, 4, (N_TRAIN * 20, SIDE, SIDE), dtype=np.uint8)
    data["y_train"] = np.zeros(N_TRAIN * 20, dtype=np.uint8)
    path = save(tmp_path / "d.npz", compressed, **data)
    damage(path)
    with pytest.raises(DataFormatError) as info:
        load_npz(path)
    assert str(info.value).startswith(f"{path}: expected")


def test_missing_npz_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="found no such file"):
        load_npz(tmp_path / "nope.npz")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint16])
def test_integral_non_uint8_pixels_are_accepted(tmp_path: Path, dtype: type) -> None:
    data = arrays()
    expected = data["x_train"].copy()
    data["x_train"] = expected.astype(dtype)
    dataset = load_npz(save(tmp_path / "d.npz", **data))
    assert dataset.train.images.dtype == np.uint8
    np.testing.assert_array_equal(dataset.train.images, expected)


@pytest.mark.parametrize(
    ("bad_value", "dtype"),
    [(256.0, np.float32), (-1.0, np.float32), (0.5, np.float64), (np.nan, np.float32), (300, np.int64)],
    ids=["above-255", "negative", "fractional", "nan", "int-above-255"],
)
def test_pixels_that_do_not_fit_uint8_are_refused(tmp_path: Path, bad_value: float, dtype: type) -> None:
    data = arrays()
    pixels = data["x_test"].astype(dtype)
    pixels[3, 2, 1] = bad_value
    data["x_test"] = pixels
    path = save(tmp_path / "d.npz", **data)
    with pytest.raises(DataFormatError) as info, np.errstate(invalid="ignore"):
        load_npz(path)
    assert str(info.value).startswith(f"{path}:x_test: expected integral pixels in 0..255")


def test_float_labels_are_refused(tmp_path: Path) -> None:
    data = arrays()
    data["y_train"] = data["y_train"].astype(np.float32)
    with pytest.raises(DataFormatError, match=r"y_train: expected integer labels, found dtype float32"):
        load_npz(save(tmp_path / "d.npz", **data))


class _CreatesFileWhenUnpickled:
    """Pickles as a call to `os.system`; unpickling it would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    data = arrays()
    data["y_train"] = np.array([_CreatesFileWhenUnpickled(marker)] * N_TRAIN, dtype=object)
    path = save(tmp_path / "d.npz", **data)
    # Control: loading with pickles allowed really runs the payload, so the refusal below is meaningful.
    with np.load(path, allow_pickle=True) as archive:
        archive["y_train"]
    assert marker.exists()
    marker.unlink()

    with pytest.raises(DataFormatError) as info:
        load_npz(path)
    assert str(info.value).startswith(f"{path}: expected plain numeric arrays")
    assert not marker.exists()


def test_npz_errors_through_cli_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(b"PK\x03\x04 broken")
    code = main(["ingest", "--source", f"npz:{path}", "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err


def test_data_format_error_is_a_pipeline_error() -> None:
    assert issubclass(DataFormatError, PipelineError)
