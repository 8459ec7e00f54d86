"""Messages for GX outcomes that the synthetic datasets do not reach: an expectation that errored."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mnist_pipeline.validation.gx_runner import run_suites
from mnist_pipeline.validation.image_profile import count_classes, profile_split
from mnist_pipeline.validation.messages import describe_result, to_json_value
from mnist_pipeline.validation.suite import CLASSES_FRAME, PROFILE_FRAME, build_suite


def test_an_expectation_that_raised_is_a_failure_naming_the_error() -> None:
    rows = 20
    table = pa.table(
        {
            "row_id": np.arange(rows),
            "label": np.arange(rows) % 10,
            "height": np.full(rows, 2),
            "width": np.full(rows, 2),
            "image": pa.array([bytes(4)] * rows, type=pa.binary(4)),
        }
    )
    profile = profile_split(table, "t.parquet")
    frames = {PROFILE_FRAME: profile.drop(columns="label"), CLASSES_FRAME: count_classes(profile, range(10))}

    results = run_suites({"train": frames}, {"train": build_suite("train", False, (2, 2))})
    described = [describe_result("train", item) for item in results["train"]]

    errored = [result for result in described if "error" in result.observed]
    assert {result.column for result in errored} == {"label"}
    assert not any(result.success for result in errored)
    assert errored[0].message.startswith('train: could not check label (Error: The column "label" in BatchData')
    assert all(result.success for result in described if result not in errored)


def test_plain_values_are_json_friendly() -> None:
    assert to_json_value(10.0) == 10
    assert to_json_value(float("nan")) is None
    assert to_json_value((1.5, 2.0)) == [1.5, 2]
    assert to_json_value({"row_id": np.int64(3)}) == {"row_id": 3}
