"""Ingestion: load a source and publish it as the Parquet dataset."""

from __future__ import annotations

import logging
from pathlib import Path

from mnist_pipeline.image_shape import DEFAULT_IMAGE_SHAPE, check_dataset_shape
from mnist_pipeline.ingest_records import compute_input_key, find_recorded_dataset, record_dataset
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.sources import SourceSpec, list_source_inputs, load_source, parse_source
from mnist_pipeline.store import IngestResult, publish_dataset

log = logging.getLogger(__name__)


def ingest(
    source: str | SourceSpec, data_dir: Path, image_shape: tuple[int, int] = DEFAULT_IMAGE_SHAPE
) -> IngestResult:
    """Load `source` (cached under data_dir/raw), check its image size, and publish it under data_dir/parquet.

    When the source's input files are the ones that gave the current dataset, of the declared image size, nothing
    is decoded (IngestResult with reused=True).
    """
    spec = parse_source(source) if isinstance(source, str) else source
    layout = DataLayout(Path(data_dir))
    inputs = list_source_inputs(spec, layout.raw)
    input_key = compute_input_key(spec.kind, inputs) if inputs else None
    recorded = find_recorded_dataset(layout, input_key) if input_key else None
    if recorded is not None and tuple(recorded.get("image_shape", ())) == tuple(image_shape):
        log.info(
            "dataset %s: reused (input %s unchanged since it was ingested; not decoded again)",
            recorded["fingerprint"][:12],
            ", ".join(path.name for path in inputs or []),
        )
        return IngestResult(recorded, written=False, path=layout.parquet, reused=True)
    dataset = load_source(spec, layout.raw)
    check_dataset_shape(dataset, image_shape)
    result = publish_dataset(dataset, layout)
    manifest = result.manifest
    if input_key:
        record_dataset(layout, input_key, manifest["fingerprint"])
    rows = ", ".join(f"{name} {info['rows']}" for name, info in manifest["splits"].items())
    action = "published" if result.written else "unchanged (same fingerprint), nothing rewritten"
    log.info("dataset %s from %s: %s rows; %s", manifest["fingerprint"][:12], dataset.source, rows, action)
    return result
