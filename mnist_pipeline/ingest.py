"""Ingestion: load a source, write it as a dataset version, and publish it only once it passes validation."""

from __future__ import annotations

import logging
from pathlib import Path

from mnist_pipeline.layout import DataLayout
from mnist_pipeline.sources import SourceSpec, load_source, parse_source
from mnist_pipeline.store import IngestResult, write_version
from mnist_pipeline.validation.results import ValidationReport
from mnist_pipeline.versions import clean_leftovers, ingest_lock, make_current, pin_version, set_aside

log = logging.getLogger(__name__)


def ingest(source: str | SourceSpec, data_dir: Path) -> IngestResult:
    """Load `source` (cached under data_dir/raw) and write it as a version under data_dir/datasets.

    The version is not current yet: `publish_if_valid` makes it so after the gate. The whole step holds the data
    dir's ingest lock, so concurrent ingests wait for each other; it starts by clearing killed ingests' leftovers.
    """
    spec = parse_source(source) if isinstance(source, str) else source
    layout = DataLayout(Path(data_dir))
    with ingest_lock(layout):
        for leftover in clean_leftovers(layout):
            log.info("removed %s, left behind by an interrupted process", leftover)
        dataset = load_source(spec, layout.raw)
        result = write_version(dataset, layout)
    manifest = result.manifest
    rows = ", ".join(f"{name} {info['rows']}" for name, info in manifest["splits"].items())
    action = "written" if result.written else "unchanged (same fingerprint), nothing rewritten"
    log.info("dataset %s from %s: %s rows; %s", manifest["fingerprint"][:12], dataset.source, rows, action)
    return result


def publish_if_valid(layout: DataLayout, fingerprint: str) -> ValidationReport:
    """The gate: validate a written version; it becomes current only if it passes, else it is set aside.

    The caller pins the version (`versions.pin_version`) so retention cannot remove it while it is checked.
    """
    from mnist_pipeline.validation import validate_dataset

    report = validate_dataset(layout.pin(fingerprint))
    with ingest_lock(layout):
        if report.success:
            make_current(layout, fingerprint)
            return report
        failed = set_aside(layout, fingerprint)
    if failed is not None:
        log.info(
            "dataset %s failed validation: set aside as %s; the current dataset is unchanged", fingerprint[:12], failed
        )
    return report


def ingest_and_publish(source: str | SourceSpec, data_dir: Path) -> tuple[IngestResult, ValidationReport]:
    """`mnist-pipeline ingest`: ingest, then publish through the same validation gate a pipeline run uses."""
    result = ingest(source, data_dir)
    layout = DataLayout(Path(data_dir))
    fingerprint = result.manifest["fingerprint"]
    with pin_version(layout, fingerprint):
        return result, publish_if_valid(layout, fingerprint)
