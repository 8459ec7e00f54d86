"""Words for outcomes: each GX result becomes a CheckResult whose message names split, column, expected, found.

Failures on rows say how many rows and which (up to a few row ids), e.g.
"test: label 10 found in 1 row (row id 123); expected values in 0..9".
"""

from __future__ import annotations

import math
from typing import Any

from mnist_pipeline.validation.gx_runner import Outcome
from mnist_pipeline.validation.results import CheckResult
from mnist_pipeline.validation.suite import CLASSES_FRAME


def describe_outcome(split: str, outcome: Outcome) -> CheckResult:
    """Turn one GX outcome into a CheckResult with plain JSON values and a human message."""
    check, result = outcome.check, outcome.result
    observed = _observe(outcome)
    if outcome.error:
        message = f"{split}: could not check {check.title} ({outcome.error}); expected {check.expected}"
    elif outcome.success:
        message = f"{split}: {check.title}: ok"
    elif check.frame == CLASSES_FRAME:
        message = _class_share_message(split, outcome)
    elif "unexpected_count" in result:
        message = _row_message(split, outcome)
    elif "partial_missing_list" in result:
        missing = ", ".join(_text(value) for value in result["partial_missing_list"])
        message = f"{split}: {check.found.format(values=missing)}; expected {check.expected}"
    else:
        message = f"{split}: {_text(result.get('observed_value'))} rows found; expected {check.expected}"
    return CheckResult(
        split=split,
        expectation=outcome.expectation,
        column=check.column,
        success=outcome.success and not outcome.error,
        observed=observed,
        expected=check.expected_value,
        message=message,
    )


def _observe(outcome: Outcome) -> Any:
    """The observed value worth storing: a count, the missing classes, or offending rows and values."""
    result = outcome.result
    if outcome.error:
        return {"error": outcome.error}
    if "unexpected_count" in result:
        observed: dict[str, Any] = {"unexpected_rows": to_json_value(result["unexpected_count"])}
        if result["unexpected_count"]:
            observed["values"] = [to_json_value(item["value"]) for item in result.get("partial_unexpected_counts", [])]
            observed["rows"] = [_index_entry(item) for item in result.get("partial_unexpected_index_list", [])]
        return observed
    if "partial_missing_list" in result:
        return {"missing": [to_json_value(value) for value in result["partial_missing_list"]]}
    return to_json_value(result.get("observed_value"))


def _row_message(split: str, outcome: Outcome) -> str:
    check, result = outcome.check, outcome.result
    count = int(result["unexpected_count"])
    values = ", ".join(_text(item["value"]) for item in result.get("partial_unexpected_counts", []))
    ids = [item.get("row_id") for item in result.get("partial_unexpected_index_list", [])]
    rows = f"{count} row" if count == 1 else f"{count} rows"
    id_text = ", ".join(_text(row_id) for row_id in ids) + (", ..." if count > len(ids) else "")
    label = "row id" if len(ids) == 1 else "row ids"
    where = f" ({label} {id_text})" if ids else ""
    return f"{split}: {check.found.format(values=values)} in {rows}{where}; expected {check.expected}"


def _class_share_message(split: str, outcome: Outcome) -> str:
    result = outcome.result
    parts = [
        f"class {_text(item.get('label'))} has {item['share']:.1%} of rows ({_text(item.get('rows'))} images)"
        for item in result.get("partial_unexpected_index_list", [])
    ]
    return f"{split}: {'; '.join(parts)}; expected {outcome.check.expected}"


def _index_entry(item: dict[str, Any]) -> dict[str, Any]:
    return {key: to_json_value(value) for key, value in item.items()}


def to_json_value(value: Any) -> Any:
    """A JSON-friendly Python value: numpy scalars unwrapped, integral floats as int, NaN as None."""
    if isinstance(value, tuple | list):
        return [to_json_value(item) for item in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _text(value: Any) -> str:
    value = to_json_value(value)
    if isinstance(value, list):
        return " vs ".join(_text(item) for item in value)
    return "null" if value is None else str(value)
