"""The per-image profile: measured from whatever the file holds, including what ingestion would never write."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.validation.image_profile import PROFILE_COLUMNS, count_classes, profile_split


def make_table(image: pa.Array, label: pa.Array | None = None) -> pa.Table:
    rows = len(image)
    return pa.table(
        {
            "row_id": pa.array(np.arange(rows, dtype=np.int64)),
            "label": label if label is not None else pa.array(np.arange(rows, dtype=np.int64) % 10),
            "height": pa.array(np.full(rows, 2, dtype=np.int32)),
            "width": pa.array(np.full(rows, 2, dtype=np.int32)),
            "image": image,
        }
    )


def test_fixed_size_images_are_measured_per_row() -> None:
    image = pa.array([bytes([0, 1, 2, 3]), bytes([9, 9, 9, 255]), None], type=pa.binary(4))

    profile = profile_split(make_table(image), "t.parquet")

    assert list(profile.columns) == list(PROFILE_COLUMNS)
    assert profile["pixel_min"].tolist()[:2] == [0, 9]
    assert profile["pixel_max"].tolist()[:2] == [3, 255]
    assert profile["n_pixels"].tolist()[:2] == [4, 4]
    assert profile["shape_pixels"].tolist() == [4, 4, 4]
    assert profile["image_is_null"].tolist() == [False, False, True]
    assert np.isnan(profile.loc[2, ["n_pixels", "pixel_min", "pixel_max"]].astype(float)).all()


def test_sliced_fixed_size_chunks_are_read_from_their_offset() -> None:
    image = pa.array([bytes([row] * 4) for row in range(6)], type=pa.binary(4)).slice(2, 3)

    profile = profile_split(make_table(image), "t.parquet")

    assert profile["pixel_max"].tolist() == [2, 3, 4]


def test_variable_length_images_report_the_bytes_present() -> None:
    image = pa.array([bytes([1, 2, 3, 4]), bytes([7]), b"", bytes([5, 6, 7, 8, 9])], type=pa.large_binary())

    profile = profile_split(make_table(image), "t.parquet")

    assert profile["n_pixels"].tolist() == [4, 1, 0, 5]
    assert profile["pixel_min"].tolist()[:2] == [1, 7]
    assert np.isnan(profile.loc[2, "pixel_min"])
    assert profile.loc[3, "pixel_max"] == 9


def test_list_images_count_nulls_and_fractions() -> None:
    image = pa.array([[0, 1.5, None, 300], [1, 2, 3, 4]], type=pa.list_(pa.float32()))

    profile = profile_split(make_table(image), "t.parquet")

    assert profile["pixel_nulls"].tolist() == [1, 0]
    assert profile["pixel_nonintegral"].tolist() == [1, 0]
    assert profile["pixel_max"].tolist() == [300, 4]


def test_identical_images_share_a_hash_and_different_ones_do_not() -> None:
    image = pa.array([bytes([1, 2, 3, 4]), bytes([1, 2, 3, 5]), bytes([1, 2, 3, 4])], type=pa.binary(4))

    hashes = profile_split(make_table(image), "t.parquet")["image_hash"].tolist()

    assert hashes[0] == hashes[2] != hashes[1]


def test_null_labels_become_nan_not_zero() -> None:
    image = pa.array([bytes(4)] * 3, type=pa.binary(4))

    profile = profile_split(make_table(image, pa.array([1, None, 3], type=pa.int64())), "t.parquet")

    assert profile["label"].tolist()[::2] == [1, 3]
    assert np.isnan(profile.loc[1, "label"])


def test_non_numeric_labels_are_a_format_error_naming_the_file() -> None:
    image = pa.array([bytes(4)], type=pa.binary(4))

    with pytest.raises(DataFormatError, match=r"t\.parquet: expected column label to hold numbers, found type string"):
        profile_split(make_table(image, pa.array(["seven"])), "t.parquet")


def test_class_counts_leave_absent_classes_out() -> None:
    image = pa.array([bytes(4)] * 4, type=pa.binary(4))
    profile = profile_split(make_table(image, pa.array([0, 0, 3, 12])), "t.parquet")

    classes = count_classes(profile, range(10))

    assert classes["label"].tolist() == [0, 3]
    assert classes["rows"].tolist() == [2, 1]
    assert classes["share"].tolist() == [0.5, 0.25]
