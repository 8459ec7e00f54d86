"""Ingestion: load a source and write it as a dataset version; `validation.publish` publishes it through the gate."""

from __future__ import annotations

import logging

from mnist_pipeline import defaults
from mnist_pipeline.data.image_shape import check_dataset_shape
from mnist_pipeline.data.ingest_records import compute_input_key, find_recorded_dataset, record_dataset
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec, list_source_inputs, load_source, parse_source
from mnist_pipeline.data.store import IngestResult, write_version
from mnist_pipeline.data.versions import clean_leftovers, ingest_lock, make_current, mark_ingested

log = logging.getLogger(__name__)


def ingest(
    source: str | SourceSpec, layout: DataLayout, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> IngestResult:
    """Load `source` (cached under raw/), check its image size, write it as a version (`publish_version` makes it
    current after the gate), all under the ingest lock. Input files that gave the current dataset are not decoded."""
    spec = parse_source(source) if isinstance(source, str) else source
    with ingest_lock(layout):
        for leftover in clean_leftovers(layout):
            log.info("removed %s, left behind by an interrupted process", leftover)
        inputs = list_source_inputs(spec, layout.raw)
        input_key = compute_input_key(spec.kind, inputs) if inputs else None
        recorded = find_recorded_dataset(layout, input_key) if input_key else None
        if (
            recorded is not None
            and tuple(recorded.get("image_shape", ())) == tuple(image_shape)
            and mark_ingested(layout, recorded["fingerprint"])
        ):
            log.info(
                "dataset %s: reused (input %s unchanged since it was ingested; not decoded again)",
                recorded["fingerprint"][:12],
                ", ".join(path.name for path in inputs or []),
            )
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


def publish_version(layout: DataLayout, fingerprint: str) -> None:
    """Make a version that passed the gate the current dataset (`parquet`); a no-op when it already is."""
    with ingest_lock(layout):
        make_current(layout, fingerprint)
