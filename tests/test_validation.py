"""The validation gate on tiny synthetic datasets: each broken dataset fails exactly the check it breaks.

Datasets ingestion accepts are published with `store.publish_dataset`; what ingestion refuses (null labels, null
images, lists of floats as images, ...) is written over the published Parquet by hand, which also breaks the
manifest's hashes, so those tests expect the integrity checks of that split to fail as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset, write_version
from mnist_pipeline.data.versions import ingest_lock, make_current
from mnist_pipeline.errors import DataFormatError, ValidationFailed
from mnist_pipeline.validation import CheckResult, ValidationReport, raise_if_failed, suite, validate_dataset

TRAIN_ROWS, TEST_ROWS = 200, 100
SPLIT_SHA = "expect_split_sha256_to_match_manifest"
FINGERPRINT = "expect_fingerprint_to_match_manifest"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
CHECKS_PER_SPLIT = 17


def make_split(rows: int, shape: tuple[int, int], salt: int) -> Split:
    """Distinct images (row number and split salt written into the first pixels) and balanced labels."""
    images = np.zeros((rows, *shape), dtype=np.uint8)
    flat = images.reshape(rows, shape[0] * shape[1])
    flat[:, 0] = np.arange(rows) % 256
    flat[:, 1] = np.arange(rows) // 256
    flat[:, 2] = salt
    flat[:, -1] = 255
    return Split(images=images, labels=np.arange(rows, dtype=np.int64) % 10)


def make_dataset(
    source: str = "idx", shape: tuple[int, int] = (4, 4), train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS
) -> RawDataset:
    return RawDataset(
        train=make_split(train_rows, shape, salt=1),
        test=make_split(test_rows, shape, salt=2),
        source=source,
        origin="synthetic",
    )


def publish(tmp_path: Path, dataset: RawDataset) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    publish_dataset(dataset, layout)
    return layout


def with_labels(split: Split, labels: list[int] | np.ndarray) -> Split:
    return Split(images=split.images, labels=np.asarray(labels, dtype=np.int64))


def rewrite_split(layout: DataLayout, split: str, **columns: pa.Array) -> None:
    """Replace columns of a published split file in place, as someone editing the Parquet by hand would."""
    path = layout.split_file(split)
    table = pq.read_table(path)
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    pq.write_table(table, path)


def failures(report: ValidationReport) -> set[tuple[str, str, str | None]]:
    return {(check.split, check.expectation, check.column) for check in report.failures()}


def integrity_failures(split: str) -> set[tuple[str, str, str | None]]:
    return {(split, SPLIT_SHA, None), ("dataset", FINGERPRINT, None)}


def only_failure(report: ValidationReport, split: str, expectation: str, column: str | None) -> CheckResult:
    """The one failed check besides the integrity checks a hand edit is expected to trip."""
    assert failures(report) - integrity_failures(split) == {(split, expectation, column)}, report.summary_lines()
    [failed] = [check for check in report.failures() if check.expectation == expectation and check.column == column]
    return failed


@pytest.fixture
def canonical_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Canonical MNIST sizes shrunk to the synthetic datasets', so canonical-source rules can be tested small."""
    monkeypatch.setitem(suite.CANONICAL_ROWS, "train", TRAIN_ROWS)
    monkeypatch.setitem(suite.CANONICAL_ROWS, "test", TEST_ROWS)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataLayout, ValidationReport]:
    """A valid dataset and its report: validated once for the tests that read it."""
    layout = publish(tmp_path_factory.mktemp("valid"), make_dataset())
    return layout, validate_dataset(layout)


def test_a_valid_dataset_passes_every_check(valid: tuple[DataLayout, ValidationReport]) -> None:
    _, report = valid

    assert report.success, report.summary_lines()
    assert report.failures() == []
    assert len(report.checks) == 2 * CHECKS_PER_SPLIT + 3
    assert {check.split for check in report.checks} == {"train", "test", "dataset"}
    assert report.summary_lines()[0].startswith("validation PASSED: 37/37 checks passed")
    raise_if_failed(report)


def test_a_valid_canonical_dataset_passes(tmp_path: Path, canonical_rows: None) -> None:
    report = validate_dataset(publish(tmp_path, make_dataset(source="pypi", shape=(28, 28))))

    assert report.success, report.summary_lines()


def test_summary_is_json_serialisable_and_lists_every_check(valid: tuple[DataLayout, ValidationReport]) -> None:
    layout, report = valid

    summary = json.loads(json.dumps(report.to_dict()))

    assert summary["success"] is True
    assert summary["checks_total"] == len(summary["checks"]) == len(report.checks)
    assert summary["fingerprint"] == json.loads(layout.manifest.read_text())["fingerprint"]
    assert {"split", "expectation", "column", "success", "observed", "expected", "message"} <= set(summary["checks"][0])


def test_label_out_of_range_names_the_label_rows_and_expected_range(tmp_path: Path) -> None:
    dataset = make_dataset()
    labels = dataset.test.labels.copy()
    labels[23] = 10
    layout = publish(tmp_path, RawDataset(dataset.train, with_labels(dataset.test, labels), "idx", "synthetic"))

    report = validate_dataset(layout)

    assert failures(report) == {("test", IN_SET, "label")}
    assert report.failures()[0].message == "test: label 10 found in 1 row (row id 23); expected values in 0..9"
    assert report.failures()[0].observed["unexpected_count"] == 1
    assert "  test     17/18 passed (100 rows); failing: label" in report.summary_lines()


def test_failed_report_raises_validation_failed_listing_each_failure(tmp_path: Path) -> None:
    dataset = make_dataset()
    train_labels, test_labels = dataset.train.labels.copy(), dataset.test.labels.copy()
    train_labels[[4, 14]] = -1
    test_labels[5] = 11
    layout = publish(
        tmp_path,
        RawDataset(with_labels(dataset.train, train_labels), with_labels(dataset.test, test_labels), "idx", "x"),
    )

    with pytest.raises(ValidationFailed) as raised:
        raise_if_failed(validate_dataset(layout))

    lines = str(raised.value).splitlines()
    assert lines[0] == "data validation failed (2 of 37 checks):"
    assert lines[1:] == [
        "- train: label -1 found in 2 rows (row ids 4, 14); expected values in 0..9",
        "- test: label 11 found in 1 row (row id 5); expected values in 0..9",
    ]


def test_null_labels_fail_the_not_null_check(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    labels = pa.array([None if row in (3, 8) else row % 10 for row in range(TRAIN_ROWS)], type=pa.int64())
    rewrite_split(layout, "train", label=labels)

    failed = only_failure(validate_dataset(layout), "train", NOT_NULL, "label")

    assert failed.message == "train: label missing (null) in 2 rows (row ids 3, 8); expected every row to have a label"


def test_a_missing_class_fails_the_presence_check_only(tmp_path: Path) -> None:
    dataset = make_dataset()
    labels = np.where(dataset.train.labels == 9, 0, dataset.train.labels)
    layout = publish(tmp_path, RawDataset(with_labels(dataset.train, labels), dataset.test, "idx", "synthetic"))

    report = validate_dataset(layout)

    assert failures(report) == {("train", "expect_column_distinct_values_to_contain_set", "label")}
    assert report.failures()[0].message == "train: no rows with label 9; expected every class 0..9 present"


def test_a_rare_class_fails_the_class_balance_check(tmp_path: Path) -> None:
    dataset = make_dataset()
    labels = dataset.train.labels.copy()
    rare = np.flatnonzero(labels == 0)[1:]
    labels[rare] = np.arange(len(rare)) % 9 + 1
    layout = publish(tmp_path, RawDataset(with_labels(dataset.train, labels), dataset.test, "idx", "synthetic"))

    report = validate_dataset(layout)

    assert failures(report) == {("train", BETWEEN, "share")}
    assert report.failures()[0].message == (
        "train: class 0 has 0.5% of rows (1 images); expected each class between 2% and 25% of the split"
    )


def test_a_dominant_class_fails_the_class_balance_check(tmp_path: Path) -> None:
    labels = np.concatenate([np.full(30, 7), np.arange(70) % 10])
    dataset = make_dataset()
    layout = publish(tmp_path, RawDataset(dataset.train, with_labels(dataset.test, labels), "idx", "synthetic"))

    report = validate_dataset(layout)

    assert failures(report) == {("test", BETWEEN, "share")}
    assert "test: class 7 has 37.0% of rows (37 images)" in report.failures()[0].message


def test_a_single_class_split_fails_presence_and_balance(tmp_path: Path) -> None:
    dataset = make_dataset()
    layout = publish(tmp_path, RawDataset(dataset.train, with_labels(dataset.test, [3] * TEST_ROWS), "idx", "x"))

    report = validate_dataset(layout)

    assert failures(report) == {
        ("test", "expect_column_distinct_values_to_contain_set", "label"),
        ("test", BETWEEN, "share"),
    }
    messages = [check.message for check in report.failures()]
    assert "test: no rows with label 0, 1, 2, 4, 5, 6, 7, 8, 9; expected every class 0..9 present" in messages


def test_canonical_source_needs_the_canonical_row_counts(tmp_path: Path) -> None:
    report = validate_dataset(publish(tmp_path, make_dataset(source="url", shape=(28, 28))))

    assert failures(report) == {
        ("train", "expect_table_row_count_to_equal", None),
        ("test", "expect_table_row_count_to_equal", None),
    }
    messages = {check.message for check in report.failures()}
    assert messages == {
        "train: 200 rows found; expected exactly 60000 rows for canonical MNIST",
        "test: 100 rows found; expected exactly 10000 rows for canonical MNIST",
    }


def test_a_grown_canonical_version_keeps_the_canonical_test_split_checks(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    with ingest_lock(layout):  # a grown version: MNIST's splits plus increments, as versions.grow_version writes it
        grown = write_version(make_dataset(source="url", shape=(28, 28)), layout, {"increments": ["b-1"]})
        make_current(layout, grown.manifest["fingerprint"])

    report = validate_dataset(layout)

    assert failures(report) == {("test", "expect_table_row_count_to_equal", None)}


def test_canonical_source_needs_28_pixel_high_images(tmp_path: Path, canonical_rows: None) -> None:
    report = validate_dataset(publish(tmp_path, make_dataset(source="pypi", shape=(27, 28))))

    assert failures(report) == {("train", IN_SET, "height"), ("test", IN_SET, "height")}
    assert "test: height 27 found in 100 rows (row ids 0, 1, 2, 3, 4, ...); expected height 28" in (
        report.failures()[1].message
    )


def test_other_sources_need_one_image_size_across_splits(tmp_path: Path) -> None:
    dataset = make_dataset(shape=(4, 4))
    other_size = make_split(TEST_ROWS, (4, 5), salt=2)
    report = validate_dataset(publish(tmp_path, RawDataset(dataset.train, other_size, "idx", "synthetic")))

    assert failures(report) == {("test", IN_SET, "width")}
    assert report.failures()[0].message.startswith("test: width 5 found in 100 rows")
    assert report.failures()[0].message.endswith("expected width 4 (images 4x4, --image-shape)")


def test_an_empty_split_fails_the_row_count(tmp_path: Path) -> None:
    report = validate_dataset(publish(tmp_path, make_dataset(test_rows=0)))

    assert ("test", "expect_table_row_count_to_be_between", None) in failures(report)
    assert failures(report) <= {
        ("test", "expect_table_row_count_to_be_between", None),
        ("test", "expect_column_distinct_values_to_contain_set", "label"),
    }
    assert "test: 0 rows found; expected between 1 and 10000000 rows" in [c.message for c in report.failures()]


def test_images_with_too_few_bytes_fail_the_pixel_count(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    images = [bytes(16)] * TEST_ROWS
    images[42] = bytes(15)
    rewrite_split(layout, "test", image=pa.array(images, type=pa.binary()))

    failed = only_failure(validate_dataset(layout), "test", "expect_column_pair_values_to_be_equal", "n_pixels")

    assert failed.message == (
        "test: pixel count differs from height x width (15 vs 16) in 1 row (row id 42); "
        "expected as many pixels as height x width"
    )


def test_null_images_fail_the_missing_image_check(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    images = pa.array([None if row == 7 else bytes(16) for row in range(TEST_ROWS)], type=pa.binary(16))
    rewrite_split(layout, "test", image=images)

    failed = only_failure(validate_dataset(layout), "test", IN_SET, "image_is_null")

    assert failed.message == "test: image missing (null) in 1 row (row id 7); expected every row to have an image"


def image_lists(rows: int, value_type: pa.DataType, edits: dict[int, list[float | None]]) -> pa.Array:
    """Images stored as lists of numbers (a hand edit); `edits` replaces whole rows."""
    return pa.array([edits.get(row, [0] * 15 + [255]) for row in range(rows)], type=pa.list_(value_type))


@pytest.mark.parametrize(
    ("value_type", "pixels", "column", "found"),
    [
        (pa.int16(), [300] + [0] * 15, "pixel_max", "pixel max 300 found"),
        (pa.int16(), [-1] + [0] * 15, "pixel_min", "pixel min -1 found"),
        (pa.float64(), [0.5] + [0] * 15, "pixel_nonintegral", "non-integral pixel values (1 per image)"),
        (pa.float64(), [None] + [0] * 15, "pixel_nulls", "null pixel values (1 per image)"),
    ],
)
def test_bad_pixel_values_fail_their_check(
    tmp_path: Path, value_type: pa.DataType, pixels: list[float | None], column: str, found: str
) -> None:
    layout = publish(tmp_path, make_dataset())
    rewrite_split(layout, "train", image=image_lists(TRAIN_ROWS, value_type, {11: pixels}))

    failed = only_failure(validate_dataset(layout), "train", BETWEEN, column)

    assert failed.message.startswith(f"train: {found} in 1 row (row id 11); expected ")


def test_repeated_row_ids_fail_uniqueness_but_not_integrity(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    row_ids = np.arange(TEST_ROWS)
    row_ids[9] = 8
    rewrite_split(layout, "test", row_id=pa.array(row_ids, type=pa.int64()))

    report = validate_dataset(layout)

    assert failures(report) == {("test", "expect_column_values_to_be_unique", "row_id")}
    assert report.failures()[0].message == "test: row_id 8 repeated in 2 rows (row ids 8, 8); expected unique row ids"


def test_null_row_ids_fail_the_not_null_check(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    rewrite_split(layout, "test", row_id=pa.array([None if r == 4 else r for r in range(TEST_ROWS)], pa.int64()))

    report = validate_dataset(layout)

    assert failures(report) == {("test", NOT_NULL, "row_id")}


def test_null_heights_fail_the_not_null_check(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    rewrite_split(layout, "test", height=pa.array([None if r == 4 else 4 for r in range(TEST_ROWS)], pa.int32()))

    only_failure(validate_dataset(layout), "test", NOT_NULL, "height")


def test_a_parquet_edited_after_ingest_fails_the_fingerprint(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    labels = make_split(TEST_ROWS, (4, 4), salt=2).labels.copy()
    labels[0] = 1
    rewrite_split(layout, "test", label=pa.array(labels))

    report = validate_dataset(layout)

    assert failures(report) == integrity_failures("test")
    messages = [check.message for check in report.failures()]
    assert messages[0].startswith("test: content sha256 is ")
    assert "the data changed after ingest" in messages[0]
    assert messages[1].startswith("dataset: fingerprint is ")


def test_duplicate_images_are_reported_but_do_not_fail(tmp_path: Path) -> None:
    dataset = make_dataset()
    train, test = dataset.train.images.copy(), dataset.test.images.copy()
    train[[5, 7]] = train[3]
    train[9] = train[1]
    test[[2, 6]] = train[10]
    layout = publish(
        tmp_path,
        RawDataset(
            Split(train, dataset.train.labels), Split(test, dataset.test.labels), source="idx", origin="synthetic"
        ),
    )

    report = validate_dataset(layout)

    assert report.success, report.summary_lines()
    duplicates = report.duplicates
    assert duplicates["train_duplicate_rows"] == 3
    assert duplicates["train_repeated_images"] == 2
    assert [3, 5, 7] in duplicates["examples"]["train"]
    assert duplicates["test_duplicate_rows"] == 1
    assert duplicates["test_rows_in_train"] == 2
    assert duplicates["train_test_shared_images"] == 1
    assert duplicates["examples"]["train_test"][0] == {"test_row_id": 2, "train_row_id": 10}
    assert any("3 rows repeat an earlier image" in line for line in report.summary_lines())


def test_missing_manifest_raises_naming_the_file(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "empty")

    with pytest.raises(DataFormatError, match=r"manifest\.json"):
        validate_dataset(layout)


def test_missing_split_file_raises_naming_the_file(tmp_path: Path) -> None:
    layout = publish(tmp_path, make_dataset())
    layout.split_file("test").unlink()

    with pytest.raises(DataFormatError, match=r"test\.parquet"):
        validate_dataset(layout)
