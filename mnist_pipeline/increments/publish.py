"""`mnist-pipeline ingest` with increments: the base version through the gate, then the grown one published."""

from __future__ import annotations

from mnist_pipeline import defaults
from mnist_pipeline.data.ingest import ingest
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec
from mnist_pipeline.data.store import IngestResult
from mnist_pipeline.increments.history import list_increments, read_index
from mnist_pipeline.increments.versions import grow_version
from mnist_pipeline.validation.publish import publish_if_valid, validate_version
from mnist_pipeline.validation.results import ValidationReport


def ingest_and_publish_grown(
    source: str | SourceSpec, layout: DataLayout, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> tuple[IngestResult, ValidationReport]:
    """Ingest the base and publish it through the validation gate a pipeline run uses; with accepted increments,
    grow it and publish the grown version through the same gate (the base itself is then never current)."""
    result = ingest(source, layout, image_shape)
    fingerprint = result.manifest["fingerprint"]
    if not list_increments(read_index(layout)):
        return result, publish_if_valid(layout, fingerprint, image_shape)
    report = validate_version(layout, fingerprint, image_shape)
    if not report.success:
        return result, report
    grown = grow_version(layout, fingerprint)
    return grown, publish_if_valid(layout, grown.manifest["fingerprint"], image_shape)
