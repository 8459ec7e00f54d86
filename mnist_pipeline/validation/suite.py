"""The expectations, as Great Expectations configurations: plain dicts, so this module imports instantly.

Each one's meta carries the words for its messages (`found`, `expected`), which come back on GX's results.
"""

from __future__ import annotations

from typing import Any

from mnist_pipeline.data.dataset import NEW_SPLIT

CANONICAL_ROWS = {"train": 60_000, "test": 10_000}
CANONICAL_SHAPE = (28, 28)
MAX_ROWS = 10_000_000
CLASSES = range(10)
CLASS_SHARE = (0.02, 0.25)
PIXEL_RANGE = (0, 255)

# The one expectation of a whole split that the `new` split (increments' test parts) is spared.
EVERY_CLASS_PRESENT = "expect_column_distinct_values_to_contain_set"
PROFILE_FRAME = "profile"
CLASSES_FRAME = "classes"


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


def build_suite(split: str, canonical: bool, shape: tuple[int, int]) -> dict[str, list[dict[str, Any]]]:
    """Every expectation for one split, per frame it reads: the profile and the class counts. The `new` split may
    be empty or lack classes: only its rows themselves are checked."""
    height, width = shape
    declared = f"images {height}x{width}, --image-shape"
    labels = list(CLASSES)
    label_range = f"{labels[0]}..{labels[-1]}"
    low, high = PIXEL_RANGE
    pixel_range = f"pixel values in {low}..{high}"
    if canonical and split != NEW_SPLIT:
        n = CANONICAL_ROWS[split]
        row_count = _expect("expect_table_row_count_to_equal", "", f"exactly {n} rows for canonical MNIST", value=n)
    else:
        least = 0 if split == NEW_SPLIT else 1  # `new` may be empty
        bound = f"at most {MAX_ROWS} rows" if least == 0 else f"between 1 and {MAX_ROWS} rows"
        row_count = _expect("expect_table_row_count_to_be_between", "", bound, min_value=least, max_value=MAX_ROWS)
    profile = [
        row_count,
        _not_null("row_id", "row id"),
        _expect("expect_column_values_to_be_unique", "row_id {values} repeated", "unique row ids", column="row_id"),
        _not_null("label", "label"),
        _in_set("label", "label {values} found", f"values in {label_range}", labels),
        _expect(
            EVERY_CLASS_PRESENT,
            "no rows with label {values}",
            f"every class {label_range} present",
            column="label",
            value_set=labels,
        ),
        _not_null("height", "height"),
        _not_null("width", "width"),
        _in_set("height", "height {values} found", f"height {height} ({declared})", [height]),
        _in_set("width", "width {values} found", f"width {width} ({declared})", [width]),
        _expect(
            "expect_column_pair_values_to_be_equal",
            "pixel count differs from height x width ({values})",
            "as many pixels as height x width",
            column_A="n_pixels",
            column_B="shape_pixels",
            ignore_row_if="either_value_is_missing",
        ),
        _in_set("image_is_null", "image missing (null)", "every row to have an image", [False]),
        _between("pixel_nulls", "null pixel values ({values} per image)", "no null pixel values", 0, 0),
        _between("pixel_nonintegral", "non-integral pixel values ({values} per image)", "integral pixel values", 0, 0),
        _between("pixel_min", "pixel min {values} found", pixel_range, low, high),
        _between("pixel_max", "pixel max {values} found", pixel_range, low, high),
    ]
    if split == NEW_SPLIT:
        return {PROFILE_FRAME: [check for check in profile if check["type"] != EVERY_CLASS_PRESENT], CLASSES_FRAME: []}
    share_low, share_high = CLASS_SHARE
    share = f"each class between {share_low:.0%} and {share_high:.0%} of the split"
    return {PROFILE_FRAME: profile, CLASSES_FRAME: [_between("share", "", share, share_low, share_high)]}


def _expect(expectation: str, found: str, expected: str, **kwargs: Any) -> dict[str, Any]:
    """A GX expectation configuration; `messages` reads the words back from the result's meta."""
    return {"type": expectation, "kwargs": kwargs, "meta": {"found": found, "expected": expected}}


def _not_null(column: str, what: str) -> dict[str, Any]:
    return _expect(
        "expect_column_values_to_not_be_null", f"{column} missing (null)", f"every row to have a {what}", column=column
    )


def _in_set(column: str, found: str, expected: str, values: list[Any]) -> dict[str, Any]:
    return _expect("expect_column_values_to_be_in_set", found, expected, column=column, value_set=values)


def _between(column: str, found: str, expected: str, low: float, high: float) -> dict[str, Any]:
    return _expect("expect_column_values_to_be_between", found, expected, column=column, min_value=low, max_value=high)
