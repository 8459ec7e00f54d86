"""Messages for GX outcomes that the synthetic datasets do not reach: an expectation that errored."""

from __future__ import annotations

from mnist_pipeline.validation.gx_runner import Outcome
from mnist_pipeline.validation.messages import describe_outcome, to_json_value
from mnist_pipeline.validation.suite import build_checks


def test_an_expectation_that_raised_is_a_failure_naming_the_error() -> None:
    check = next(check for check in build_checks("train", False, (4, 4)) if check.key == "label_in_range")
    outcome = Outcome(check, "expect_column_values_to_be_in_set", False, {}, "column label not found")

    result = describe_outcome("train", outcome)

    assert not result.success
    assert result.observed == {"error": "column label not found"}
    assert result.message == "train: could not check labels in 0..9 (column label not found); expected values in 0..9"


def test_plain_values_are_json_friendly() -> None:
    assert to_json_value(10.0) == 10
    assert to_json_value(float("nan")) is None
    assert to_json_value((1.5, 2.0)) == [1.5, 2]
