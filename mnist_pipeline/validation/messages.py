"""Words for outcomes: each GX result becomes a CheckResult whose message names split, column, expected, found.

The words come from the expectation's meta (`suite`), e.g. "test: label 10 found in 1 row (row id 123); expected
values in 0..9".
"""

from __future__ import annotations

import math
from typing import Any

from mnist_pipeline.validation.results import CheckResult

# What of GX's SUMMARY result is worth storing: the observed value, or counts and examples of what was off.
OBSERVED_KEYS = ("observed_value", "unexpected_count", "partial_unexpected_index_list", "partial_missing_list")


def describe_result(split: str, item: Any) -> CheckResult:
    """Turn one GX ExpectationValidationResult into a CheckResult with plain JSON values and a human message."""
    config, result = item.expectation_config, item.result or {}
    column = config.kwargs.get("column", config.kwargs.get("column_A"))
    expected = config.meta["expected"]
    error = _exception_message(item.exception_info)
    if error:
        message = f"{split}: could not check {column or 'the table'} ({error}); expected {expected}"
    elif item.success:
        message = f"{split}: {expected}: ok"
    elif column == "share":
        message = _class_share_message(split, result, expected)
    elif "unexpected_count" in result:
        message = _row_message(split, result, config.meta["found"], expected)
    elif "partial_missing_list" in result:
        missing = ", ".join(_text(value) for value in result["partial_missing_list"])
        message = f"{split}: {config.meta['found'].format(values=missing)}; expected {expected}"
    else:
        message = f"{split}: {_text(result.get('observed_value'))} rows found; expected {expected}"
    observed = {key: to_json_value(result[key]) for key in OBSERVED_KEYS if result.get(key) is not None}
    return CheckResult(
        split=split,
        expectation=config.type,
        column=column,
        success=bool(item.success) and not error,
        observed={"error": error} if error else observed,
        expected=expected,
        message=message,
    )


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GX nests exception info either directly or per metric; return the first message, if any."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message")
    return None


def _row_message(split: str, result: dict[str, Any], found: str, expected: str) -> str:
    count = int(result["unexpected_count"])
    values = ", ".join(_text(item["value"]) for item in result.get("partial_unexpected_counts", []))
    ids = [item.get("row_id") for item in result.get("partial_unexpected_index_list", [])]
    rows = f"{count} row" if count == 1 else f"{count} rows"
    id_text = ", ".join(_text(row_id) for row_id in ids) + (", ..." if count > len(ids) else "")
    label = "row id" if len(ids) == 1 else "row ids"
    where = f" ({label} {id_text})" if ids else ""
    return f"{split}: {found.format(values=values)} in {rows}{where}; expected {expected}"


def _class_share_message(split: str, result: dict[str, Any], expected: str) -> str:
    parts = [
        f"class {_text(item.get('label'))} has {item['share']:.1%} of rows ({_text(item.get('rows'))} images)"
        for item in result.get("partial_unexpected_index_list", [])
    ]
    return f"{split}: {'; '.join(parts)}; expected {expected}"


def to_json_value(value: Any) -> Any:
    """A JSON-friendly Python value: numpy scalars unwrapped, integral floats as int, NaN as None."""
    if isinstance(value, dict):
        return {key: to_json_value(item) for key, item in value.items()}
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
