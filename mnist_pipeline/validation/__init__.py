"""Data validation gate (Great Expectations on a per-image profile); GX itself is imported only when validating."""

from mnist_pipeline.validation.results import CheckResult, ValidationReport, raise_if_failed
from mnist_pipeline.validation.validate import validate_dataset

__all__ = ["CheckResult", "ValidationReport", "raise_if_failed", "validate_dataset"]
