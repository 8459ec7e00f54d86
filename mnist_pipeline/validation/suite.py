"""The expectations, as plain data: which GX expectation runs on which frame, and how to word its outcome.

Kept free of Great Expectations so it imports instantly; `gx_runner` turns each Check into a GX expectation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CANONICAL_ROWS = {"train": 60_000, "test": 10_000}
CANONICAL_SHAPE = (28, 28)
MAX_ROWS = 10_000_000
CLASSES = range(10)
CLASS_SHARE = (0.02, 0.25)
PIXEL_RANGE = (0, 255)

PROFILE_FRAME = "profile"
CLASSES_FRAME = "classes"


@dataclass(frozen=True)
class Check:
    """One expectation on one frame of one split, with the words for its messages.

    `found` describes offending rows ("label {values} found"); `expected` completes "expected ..." in messages.
    """

    key: str
    frame: str
    expectation: str
    kwargs: dict[str, Any]
    title: str
    found: str
    expected: str
    expected_value: Any

    @property
    def column(self) -> str | None:
        """The profile column the expectation reads (the first one for pair expectations)."""
        return self.kwargs.get("column", self.kwargs.get("column_A"))


def choose_image_shape(manifest: dict[str, Any], canonical: bool, declared: tuple[int, int] | None) -> tuple[int, int]:
    """The one size every image must have: 28x28 for canonical MNIST, else the declared size (--image-shape),
    else the size recorded in the manifest at ingest, else 28x28."""
    if canonical:
        return CANONICAL_SHAPE
    if declared is not None:
        return (int(declared[0]), int(declared[1]))
    recorded = manifest.get("image_shape")
    if isinstance(recorded, list) and len(recorded) == 2 and all(isinstance(side, int) for side in recorded):
        return (recorded[0], recorded[1])
    return CANONICAL_SHAPE


def build_checks(split: str, canonical: bool, shape: tuple[int, int]) -> list[Check]:
    """Every expectation for one split, in the order they are reported."""
    return [
        _row_count_check(split, canonical),
        *_id_and_label_checks(),
        *_shape_checks(shape),
        *_pixel_checks(),
        _class_share_check(),
    ]


def _row_count_check(split: str, canonical: bool) -> Check:
    if canonical:
        rows = CANONICAL_ROWS[split]
        return Check(
            key="row_count",
            frame=PROFILE_FRAME,
            expectation="ExpectTableRowCountToEqual",
            kwargs={"value": rows},
            title=f"exactly {rows} rows (canonical MNIST)",
            found="",
            expected=f"exactly {rows} rows for canonical MNIST",
            expected_value=rows,
        )
    return Check(
        key="row_count",
        frame=PROFILE_FRAME,
        expectation="ExpectTableRowCountToBeBetween",
        kwargs={"min_value": 1, "max_value": MAX_ROWS},
        title=f"between 1 and {MAX_ROWS} rows",
        found="",
        expected=f"between 1 and {MAX_ROWS} rows",
        expected_value={"min": 1, "max": MAX_ROWS},
    )


def _not_null(key: str, column: str, what: str) -> Check:
    return Check(
        key=key,
        frame=PROFILE_FRAME,
        expectation="ExpectColumnValuesToNotBeNull",
        kwargs={"column": column},
        title=f"no missing {what}",
        found=f"{column} missing (null)",
        expected=f"every row to have a {what}",
        expected_value="not null",
    )


def _id_and_label_checks() -> list[Check]:
    labels = list(CLASSES)
    label_range = f"{labels[0]}..{labels[-1]}"
    return [
        _not_null("row_id_not_null", "row_id", "row id"),
        Check(
            key="row_id_unique",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnValuesToBeUnique",
            kwargs={"column": "row_id"},
            title="row ids unique",
            found="row_id {values} repeated",
            expected="unique row ids",
            expected_value="unique",
        ),
        _not_null("label_not_null", "label", "label"),
        Check(
            key="label_in_range",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnValuesToBeInSet",
            kwargs={"column": "label", "value_set": labels},
            title=f"labels in {label_range}",
            found="label {values} found",
            expected=f"values in {label_range}",
            expected_value=labels,
        ),
        Check(
            key="every_class_present",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnDistinctValuesToContainSet",
            kwargs={"column": "label", "value_set": labels},
            title=f"every class {label_range} present",
            found="no rows with label {values}",
            expected=f"every class {label_range} present",
            expected_value=labels,
        ),
    ]


def _shape_checks(shape: tuple[int, int]) -> list[Check]:
    height, width = shape
    return [
        _not_null("height_not_null", "height", "height"),
        _not_null("width_not_null", "width", "width"),
        Check(
            key="height",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnValuesToBeInSet",
            kwargs={"column": "height", "value_set": [height]},
            title=f"height {height}",
            found="height {values} found",
            expected=f"height {height} (images {height}x{width}, --image-shape)",
            expected_value=height,
        ),
        Check(
            key="width",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnValuesToBeInSet",
            kwargs={"column": "width", "value_set": [width]},
            title=f"width {width}",
            found="width {values} found",
            expected=f"width {width} (images {height}x{width}, --image-shape)",
            expected_value=width,
        ),
        Check(
            key="pixel_count",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnPairValuesToBeEqual",
            kwargs={"column_A": "n_pixels", "column_B": "shape_pixels", "ignore_row_if": "either_value_is_missing"},
            title="pixel count = height x width",
            found="pixel count differs from height x width ({values})",
            expected="as many pixels as height x width",
            expected_value="n_pixels == height * width",
        ),
    ]


def _pixel_checks() -> list[Check]:
    low, high = PIXEL_RANGE
    return [
        Check(
            key="image_not_null",
            frame=PROFILE_FRAME,
            expectation="ExpectColumnValuesToBeInSet",
            kwargs={"column": "image_is_null", "value_set": [False]},
            title="no missing images",
            found="image missing (null)",
            expected="every row to have an image",
            expected_value="not null",
        ),
        _zero_count("pixel_nulls", "null pixel values", "no null pixel values"),
        _zero_count("pixel_nonintegral", "non-integral pixel values", "integral pixel values"),
        _pixel_bound("pixel_min", low, high),
        _pixel_bound("pixel_max", low, high),
    ]


def _zero_count(column: str, found: str, expected: str) -> Check:
    return Check(
        key=column,
        frame=PROFILE_FRAME,
        expectation="ExpectColumnValuesToBeBetween",
        kwargs={"column": column, "min_value": 0, "max_value": 0},
        title=expected,
        found=f"{found} ({{values}} per image)",
        expected=expected,
        expected_value=0,
    )


def _pixel_bound(column: str, low: int, high: int) -> Check:
    return Check(
        key=column,
        frame=PROFILE_FRAME,
        expectation="ExpectColumnValuesToBeBetween",
        kwargs={"column": column, "min_value": low, "max_value": high},
        title=f"{column.replace('_', ' ')} in {low}..{high}",
        found=f"{column.replace('_', ' ')} {{values}} found",
        expected=f"pixel values in {low}..{high}",
        expected_value={"min": low, "max": high},
    )


def _class_share_check() -> Check:
    low, high = CLASS_SHARE
    return Check(
        key="class_share",
        frame=CLASSES_FRAME,
        expectation="ExpectColumnValuesToBeBetween",
        kwargs={"column": "share", "min_value": low, "max_value": high},
        title=f"each class {low:.0%}..{high:.0%} of the split",
        found="",
        expected=f"each class between {low:.0%} and {high:.0%} of the split",
        expected_value={"min": low, "max": high},
    )
