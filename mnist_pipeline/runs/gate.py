"""A run's validation gate, with passes recorded as `validations/<key>.json` (key: `runs.cache_keys`), so
unchanged data is not checked again while an edited file or a changed suite is. Failures are never recorded.
"""

from __future__ import annotations

from typing import Any

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.files.atomic import write_json_atomic
from mnist_pipeline.files.usage import reuse_summary
from mnist_pipeline.runs.cache_keys import compute_validation_key
from mnist_pipeline.validation.publish import validate_version
from mnist_pipeline.validation.results import ValidationReport


def validate_or_reuse(
    layout: DataLayout, fingerprint: str, image_shape: tuple[int, int]
) -> tuple[dict[str, Any], ValidationReport | None]:
    """The summary of the recorded pass of these exact files (and no report), else of a fresh validation (and
    its report); a failing version is set aside by `validate_version`. The summary's `reused` says which."""
    key = compute_validation_key(layout.pin(fingerprint).parquet, tuple(image_shape))
    record = layout.validations / f"{key}.json"
    recorded = reuse_summary(layout.gc_lock, record)
    if recorded is not None:
        return {**recorded, "reused": True}, None
    report = validate_version(layout, fingerprint, image_shape)
    summary = report.to_dict()
    if report.success:
        write_json_atomic(record, summary)
    return {**summary, "reused": False}, report
