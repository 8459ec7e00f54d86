"""Run the checks with Great Expectations: imported only here, only when validating, and kept quiet.

`import great_expectations` costs seconds and floods INFO logs (some of its modules set their own logger
level), so its loggers are lowered to WARNING after the import and its progress bars are switched off in the
ephemeral context. One suite per (split, frame), built in one go, run through a ValidationDefinition.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pandas as pd

from mnist_pipeline.validation.suite import CLASSES_FRAME, PROFILE_FRAME, Check

# Columns GX reports for each offending row, so messages can name the rows.
INDEX_COLUMNS = {PROFILE_FRAME: ["row_id"], CLASSES_FRAME: ["label", "rows"]}
PARTIAL_UNEXPECTED = 5


@dataclass(frozen=True)
class Outcome:
    """A check's raw GX outcome: expectation type, success, GX's result dict, or the error that stopped it."""

    check: Check
    expectation: str
    success: bool
    result: dict[str, Any]
    error: str | None


def import_quiet_gx() -> ModuleType:
    """Import great_expectations with its loggers at WARNING (its import alone logs thousands of lines).

    Its own DeprecationWarnings (sre_constants, sre_parse) are not ours to act on, so the import hides them.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx

    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return gx


def run_checks(batches: dict[str, dict[str, pd.DataFrame]], checks: dict[str, list[Check]]) -> dict[str, list[Outcome]]:
    """Run every split's checks on its frames; outcomes come back per split in the checks' order."""
    gx = import_quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_pandas("mnist_profiles")
    outcomes: dict[str, list[Outcome]] = {}
    for split, frames in batches.items():
        by_key: dict[str, Outcome] = {}
        for frame_name, frame in frames.items():
            frame_checks = [check for check in checks[split] if check.frame == frame_name]
            by_key.update(_run_suite(gx, context, datasource, f"{split}_{frame_name}", frame, frame_checks))
        outcomes[split] = [by_key[check.key] for check in checks[split]]
    return outcomes


def _run_suite(
    gx: ModuleType, context: Any, datasource: Any, name: str, frame: pd.DataFrame, checks: list[Check]
) -> dict[str, Outcome]:
    batch = datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
    expectations = [_to_expectation(gx, check) for check in checks]
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    index_columns = [column for column in INDEX_COLUMNS[checks[0].frame] if column in frame.columns]
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": index_columns,
            "partial_unexpected_count": PARTIAL_UNEXPECTED,
        },
    )
    by_key = {check.key: check for check in checks}
    outcomes = {}
    for item in result.results:
        check = by_key[item.expectation_config.meta["key"]]
        outcomes[check.key] = Outcome(
            check=check,
            expectation=item.expectation_config.type,
            success=bool(item.success),
            result=dict(item.result or {}),
            error=_exception_message(item.exception_info),
        )
    return outcomes


def _to_expectation(gx: ModuleType, check: Check) -> Any:
    expectation_class = getattr(gx.expectations, check.expectation)
    return expectation_class(**check.kwargs, meta={"key": check.key})


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
