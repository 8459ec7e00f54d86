"""The gate's blocking checks (tabled in docs/increments.md): Great Expectations on a per-image profile of the batch,
one narrow row per image, as the dataset gate does. Each failed check is one line with a count and a few names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mnist_pipeline import defaults
from mnist_pipeline.increments.hashes import SHA_BYTES, as_sha_array, is_test_part
from mnist_pipeline.increments.inbox import PendingBatch
from mnist_pipeline.validation.gx_runner import run_suites
from mnist_pipeline.validation.messages import to_json_value
from mnist_pipeline.validation.results import CheckResult
from mnist_pipeline.validation.suite import CLASS_SHARE, CLASSES, CLASSES_FRAME, PIXEL_RANGE, PROFILE_FRAME

DEFAULT_MIN_IMAGES = defaults.MIN_IMAGES
MAX_SIDE = 10_000
PROBLEMS_FRAME = "problems"
SUBJECT = "batch"
EXAMPLES = 3
CLASS_SHARES_CHECK = "class shares"


@dataclass(frozen=True)
class KnownImages:
    """Content hashes the batch is checked against: accepted increments' images, their test parts, MNIST's test."""

    accepted: pa.Array
    increment_test: pa.Array
    mnist_test: pa.Array


def known_images(index: pa.Table, mnist_test_shas: np.ndarray, batch_shas: np.ndarray) -> KnownImages:
    """What `profile_batch` compares against: the batch's images the index holds (probed by hash), MNIST's test."""
    wanted = as_sha_array(batch_shas)
    sha = index.column("sha")
    seen = index.filter(pc.is_in(sha, value_set=wanted)) if len(wanted) else index.slice(0, 0)
    accepted = seen.column("sha").combine_chunks()
    in_test = pc.equal(seen.column("part"), "test").combine_chunks()
    return KnownImages(
        accepted=accepted, increment_test=accepted.filter(in_test), mnist_test=as_sha_array(mnist_test_shas)
    )


def profile_batch(batch: PendingBatch, known: KnownImages) -> pd.DataFrame:
    """One row per image: label, raw size and range, emptiness, and where else its content occurs. `raw_side` and
    `raw_pixel` hold the one value their check judges (the side under 1 or the longer; the value below 0 or the
    highest); rows without a prepared image have no hash, so they fail their own check only."""
    table = batch.table
    shas = as_sha_array(batch.shas)
    empty = table.column("empty").to_numpy(zero_copy_only=False)
    raw_min = table.column("raw_min").to_numpy()
    raw_max = table.column("raw_max").to_numpy()
    height, width = table.column("raw_height").to_numpy(), table.column("raw_width").to_numpy()
    hashed = ~empty & (raw_min >= PIXEL_RANGE[0]) & (raw_max <= PIXEL_RANGE[1])

    def occurs_in(values: pa.Array) -> np.ndarray:
        found = pc.is_in(shas, value_set=values).to_numpy(zero_copy_only=False) if len(values) else False
        return hashed & found

    raw = np.ascontiguousarray(batch.shas).tobytes()
    hex_shas = np.array([raw[start : start + SHA_BYTES].hex() for start in range(0, len(raw), SHA_BYTES)])
    return pd.DataFrame(
        {
            "row_id": np.arange(len(batch.names), dtype=np.int64),
            "label": batch.labels,
            "raw_side": np.where(np.minimum(height, width) < 1, np.minimum(height, width), np.maximum(height, width)),
            "raw_pixel": np.where(raw_min < PIXEL_RANGE[0], raw_min, raw_max),
            "empty": empty,
            "sha": pd.Series(np.where(hashed, hex_shas, None) if len(hex_shas) else [], dtype=object),
            "accepted_before": occurs_in(known.accepted),
            "in_mnist_test": occurs_in(known.mnist_test),
            "in_increment_test": occurs_in(known.increment_test),
        }
    )


def build_batch_suite(min_images: int) -> dict[str, list[dict[str, Any]]]:
    """The blocking checks, per frame: the profile and the inputs that could not be read."""
    labels = list(CLASSES)
    low, high = PIXEL_RANGE
    enough = f"at least {min_images} images (--min-images)"
    profile = [
        _expect("expect_table_row_count_to_be_between", "images", enough, "only {count} images", min_value=min_images),
        _between("raw_side", "shapes", f"image sides of 1..{MAX_SIDE} pixels", "with a side of {values}", 1, MAX_SIDE),
        _between("raw_pixel", "pixel range", f"pixel values in {low}..{high}", "with pixel values {values}", low, high),
        _in_set("label", "labels", f"labels in {labels[0]}..{labels[-1]}", "with label {values}", labels),
        _in_set("empty", "empty images", "ink in every image", "without ink (blank)", [False]),
        _expect(
            "expect_column_values_to_be_unique",
            "duplicates in the batch",
            "each image under one label (repeats with the same label are kept once)",
            "the same image under different labels",
            column="sha",
        ),
        _in_set(
            "accepted_before",
            "duplicates of accepted images",
            "no image of an accepted increment",
            "already in an accepted increment",
            [False],
        ),
        _in_set(
            "in_mnist_test",
            "test leakage (MNIST test)",
            "no image of the MNIST test split",
            "equal to an MNIST test image",
            [False],
        ),
        _in_set(
            "in_increment_test",
            "test leakage (increments' test parts)",
            "no image of an accepted increment's test part",
            "equal to an image of an increment's test part",
            [False],
        ),
    ]
    readable = _expect(
        "expect_table_row_count_to_equal", "unreadable inputs", "every input readable", "could not be read", value=0
    )
    share_low, share_high = CLASS_SHARE
    bounds = f"each class {share_low:.0%}..{share_high:.0%} of the train split after accepting (as the dataset gate)"
    shares = _between("share", CLASS_SHARES_CHECK, bounds, "", share_low, share_high)
    return {PROFILE_FRAME: profile, PROBLEMS_FRAME: [readable], CLASSES_FRAME: [shares]}


def count_shares_after(batch: PendingBatch, train_counts: np.ndarray) -> pd.DataFrame:
    """Per class: its rows and share of the train split once the batch's train part joins `train_counts`."""
    labels = batch.labels[~is_test_part(batch.shas)]
    labels = labels[(labels >= CLASSES.start) & (labels < CLASSES.stop)]
    rows = np.asarray(train_counts, dtype=np.int64) + np.bincount(labels, minlength=len(CLASSES))
    return pd.DataFrame(
        {"label": np.array(CLASSES, dtype=np.int64), "rows": rows, "share": rows / max(int(rows.sum()), 1)}
    )


def run_checks(batch: PendingBatch, known: KnownImages, min_images: int, train_counts: np.ndarray) -> list[CheckResult]:
    """Every blocking check's outcome; `train_counts` are the rows per class of the train split the batch joins."""
    problems = [str(line) for line in batch.meta.get("problems", [])]
    frames = {
        PROFILE_FRAME: profile_batch(batch, known),
        PROBLEMS_FRAME: pd.DataFrame({"row_id": np.arange(len(problems), dtype=np.int64), "problem": problems}),
        CLASSES_FRAME: count_shares_after(batch, train_counts),
    }
    results = run_suites({SUBJECT: frames}, {SUBJECT: build_batch_suite(min_images)})[SUBJECT]
    checks = [_describe(item, batch.names, problems, len(batch.names)) for item in results]
    repeats = [str(name) for name in batch.meta.get("repeats_dropped", [])]
    if repeats:  # landing kept each image once per label: the report says which copies went
        shown = ", ".join(repeats[:EXAMPLES]) + (", ..." if len(repeats) > EXAMPLES else "")
        note = f"; {len(repeats)} repeats of an image with the same label dropped ({shown})"
        checks = [
            dataclasses.replace(check, message=check.message + note) if check.column == "sha" else check
            for check in checks
        ]
    return checks


def _describe(item: Any, names: list[str], problems: list[str], rows: int) -> CheckResult:
    config, result = item.expectation_config, item.result or {}
    meta = config.meta
    column = config.kwargs.get("column")
    if item.success:
        message = f"{meta['check']}: ok ({meta['expected']})"
    elif meta["check"] == CLASS_SHARES_CHECK:
        offending = result.get("partial_unexpected_index_list", [])
        shares = ", ".join(
            f"digit {_text(entry.get('label'))}: {entry['share']:.1%}, {_text(entry.get('rows'))} images"
            for entry in offending[:EXAMPLES]
        )
        count = int(result.get("unexpected_count", len(offending)))
        message = f"{meta['check']}: {count} classes out of bounds ({shares}); expected {meta['expected']}"
    elif meta["check"] == "unreadable inputs":
        count = int(result.get("observed_value", len(problems)))
        examples = "; ".join(problems[:EXAMPLES]) + ("; ..." if count > EXAMPLES else "")
        message = f"{meta['check']}: {count} inputs could not be read ({examples}); expected {meta['expected']}"
    elif "unexpected_count" not in result:
        count = to_json_value(result.get("observed_value"))
        message = f"{meta['check']}: {meta['found'].format(count=count)}; expected {meta['expected']}"
    else:
        count = int(result["unexpected_count"])
        values = sorted({_text(entry["value"]) for entry in result.get("partial_unexpected_counts", [])})
        ids = [int(entry["row_id"]) for entry in result.get("partial_unexpected_index_list", [])][:EXAMPLES]
        examples = ", ".join(names[row] for row in ids) + (", ..." if count > len(ids) else "")
        found = meta["found"].format(values=", ".join(values[:EXAMPLES]))
        message = f"{meta['check']}: {count} of {rows} images {found} (e.g. {examples}); expected {meta['expected']}"
    observed = {key: to_json_value(result[key]) for key in ("observed_value", "unexpected_count") if key in result}
    return CheckResult(SUBJECT, config.type, column, bool(item.success), observed, meta["expected"], message)


def _text(value: Any) -> str:
    value = to_json_value(value)
    return "null" if value is None else str(value)


def _expect(expectation: str, check: str, expected: str, found: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": expectation, "kwargs": kwargs, "meta": {"check": check, "expected": expected, "found": found}}


def _between(column: str, check: str, expected: str, found: str, low: float, high: float) -> dict[str, Any]:
    return _expect(
        "expect_column_values_to_be_between", check, expected, found, column=column, min_value=low, max_value=high
    )


def _in_set(column: str, check: str, expected: str, found: str, values: list[Any]) -> dict[str, Any]:
    return _expect("expect_column_values_to_be_in_set", check, expected, found, column=column, value_set=values)
