"""The gate between ingestion and use: a written dataset version becomes current only once it passes validation.

It lives above both `data` (which writes and publishes versions) and the checks, so neither imports the other.
"""

from __future__ import annotations

import logging

from mnist_pipeline.data.ingest import publish_version
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.versions import ingest_lock, set_aside
from mnist_pipeline.validation.results import ValidationReport
from mnist_pipeline.validation.validate import validate_dataset

log = logging.getLogger(__name__)


def validate_version(layout: DataLayout, fingerprint: str, image_shape: tuple[int, int] | None) -> ValidationReport:
    """The gate's check of a written version; a failing version is set aside and the current one stays current."""
    report = validate_dataset(layout.pin(fingerprint), image_shape)
    if report.success:
        return report
    with ingest_lock(layout):
        failed = set_aside(layout, fingerprint)
    if failed is not None:
        log.info(
            "dataset %s failed validation: set aside as %s; the current dataset is unchanged", fingerprint[:12], failed
        )
    return report


def publish_if_valid(layout: DataLayout, fingerprint: str, image_shape: tuple[int, int] | None) -> ValidationReport:
    """The gate: validate a written version; it becomes current only if it passes, else it is set aside."""
    report = validate_version(layout, fingerprint, image_shape)
    if report.success:
        publish_version(layout, fingerprint)
    return report
