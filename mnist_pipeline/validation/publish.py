"""The gate between ingestion and use: a written dataset version becomes current only once it passes validation.

It lives above both `data` (which writes and publishes versions) and the checks, so neither imports the other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mnist_pipeline import defaults
from mnist_pipeline.data.ingest import ingest, publish_version
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec
from mnist_pipeline.data.store import IngestResult
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


def ingest_and_publish(
    source: str | SourceSpec, data_dir: Path, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> tuple[IngestResult, ValidationReport]:
    """`mnist-pipeline ingest`: ingest, then publish through the same validation gate a pipeline run uses."""
    result = ingest(source, data_dir, image_shape)
    layout = DataLayout(Path(data_dir))
    return result, publish_if_valid(layout, result.manifest["fingerprint"], image_shape)
