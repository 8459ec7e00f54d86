"""Run the checks with Great Expectations: imported only here, only when validating, and kept quiet.

`import great_expectations` costs seconds and floods INFO logs, so its loggers are lowered to WARNING after the
import and its progress bars are switched off. One suite per (split, frame), validated on that frame as a batch.
"""

from __future__ import annotations

import logging
import warnings
from types import ModuleType
from typing import Any

import pandas as pd

from mnist_pipeline.validation.suite import CLASSES_FRAME, PROFILE_FRAME

# Columns GX reports for each offending row, so messages can name the rows (other frames: row_id).
INDEX_COLUMNS = {PROFILE_FRAME: ["row_id"], CLASSES_FRAME: ["label", "rows"]}
PARTIAL_UNEXPECTED = 5


def import_quiet_gx() -> ModuleType:
    """Import great_expectations with its loggers at WARNING (its import alone logs thousands of lines), hiding its
    own DeprecationWarnings, which are not ours to act on."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx

    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return gx


def run_suites(
    batches: dict[str, dict[str, pd.DataFrame]], suites: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, list[Any]]:
    """Validate every split's frames with that split's suites; GX's ExpectationValidationResults come back per split.
    Checks run in GX's BASIC format; only failed ones run again in SUMMARY, for the rows to name (on every check,
    SUMMARY nearly doubles GX's time)."""
    gx = import_quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_pandas("mnist_profiles")
    results: dict[str, list[Any]] = {split: [] for split in batches}
    for split, frames in batches.items():
        for frame_name, frame in frames.items():
            name = f"{split}_{frame_name}"
            batch = datasource.read_dataframe(frame, asset_name=name)
            suite = gx.ExpectationSuite(name=name, expectations=suites[split][frame_name])
            outcome = batch.validate(suite, result_format="BASIC").results
            results[split] += [item for item in outcome if item.success]
            failed = [item.expectation_config for item in outcome if not item.success]
            if failed:
                columns = {"unexpected_index_column_names": INDEX_COLUMNS.get(frame_name, ["row_id"])}
                summary = {"result_format": "SUMMARY", "partial_unexpected_count": PARTIAL_UNEXPECTED, **columns}
                again = gx.ExpectationSuite(name=f"{name}_failed", expectations=failed)
                results[split] += batch.validate(again, result_format=summary).results
    return results
