"""Ingestion: load a source, write it as a dataset version, and publish it only once it passes validation."""

from __future__ import annotations

import logging
from pathlib import Path

from mnist_pipeline import defaults
from mnist_pipeline.data.image_shape import check_dataset_shape
from mnist_pipeline.data.ingest_records import compute_input_key, find_recorded_dataset, record_dataset
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec, list_source_inputs, load_source, parse_source
from mnist_pipeline.data.store import IngestResult, write_version
from mnist_pipeline.data.versions import (
    clean_leftovers,
    ingest_lock,
    make_current,
    mark_ingested,
    pin_version,
    set_aside,
)
from mnist_pipeline.validation.results import ValidationReport

log = logging.getLogger(__name__)


def ingest(
    source: str | SourceSpec, data_dir: Path, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> IngestResult:
    """Load `source` (cached under data_dir/raw), check its image size, write it as a version under datasets/.

    The version is not current yet: `publish_version` makes it so after the gate. The whole step holds the data
    dir's ingest lock, so concurrent ingests wait for each other; it starts by clearing killed ingests' leftovers.
    When the source's input files are the ones that gave the current dataset, of the declared image size, nothing
    is decoded (IngestResult with reused=True).
    """
    spec = parse_source(source) if isinstance(source, str) else source
    layout = DataLayout(Path(data_dir))
    with ingest_lock(layout):
        for leftover in clean_leftovers(layout):
            log.info("removed %s, left behind by an interrupted process", leftover)
        inputs = list_source_inputs(spec, layout.raw)
        input_key = compute_input_key(spec.kind, inputs) if inputs else None
        recorded = find_recorded_dataset(layout, input_key) if input_key else None
        if recorded is not None and tuple(recorded.get("image_shape", ())) == tuple(image_shape):
            log.info(
                "dataset %s: reused (input %s unchanged since it was ingested; not decoded again)",
                recorded["fingerprint"][:12],
                ", ".join(path.name for path in inputs or []),
            )
            mark_ingested(layout, recorded["fingerprint"])
            return IngestResult(recorded, written=False, path=layout.parquet, reused=True)
        dataset = load_source(spec, layout.raw)
        check_dataset_shape(dataset, image_shape)
        result = write_version(dataset, layout)
        if input_key:
            record_dataset(layout, input_key, result.manifest["fingerprint"])
    manifest = result.manifest
    rows = ", ".join(f"{name} {info['rows']}" for name, info in manifest["splits"].items())
    action = "written" if result.written else "unchanged (same fingerprint), nothing rewritten"
    log.info("dataset %s from %s: %s rows; %s", manifest["fingerprint"][:12], dataset.source, rows, action)
    return result


def validate_version(layout: DataLayout, fingerprint: str, image_shape: tuple[int, int] | None) -> ValidationReport:
    """The gate's check of a written version; a failing version is set aside and the current one stays current.

    The caller pins the version (`versions.pin_version`) so retention cannot remove it while it is checked.
    """
    from mnist_pipeline.validation import validate_dataset

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


def publish_version(layout: DataLayout, fingerprint: str) -> None:
    """Make a version that passed the gate the current dataset (`parquet`); a no-op when it already is."""
    with ingest_lock(layout):
        make_current(layout, fingerprint)


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
    fingerprint = result.manifest["fingerprint"]
    with pin_version(layout, fingerprint):
        return result, publish_if_valid(layout, fingerprint, image_shape)
