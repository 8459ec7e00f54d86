"""Ingestion: load a source and publish it as the Parquet dataset."""

from __future__ import annotations

import logging
from pathlib import Path

from mnist_pipeline.image_shape import DEFAULT_IMAGE_SHAPE, check_dataset_shape
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.sources import SourceSpec, load_source, parse_source
from mnist_pipeline.store import IngestResult, publish_dataset

log = logging.getLogger(__name__)


def ingest(
    source: str | SourceSpec, data_dir: Path, image_shape: tuple[int, int] = DEFAULT_IMAGE_SHAPE
) -> IngestResult:
    """Load `source` (cached under data_dir/raw), check its image size, and publish it under data_dir/parquet."""
    spec = parse_source(source) if isinstance(source, str) else source
    layout = DataLayout(Path(data_dir))
    dataset = load_source(spec, layout.raw)
    check_dataset_shape(dataset, image_shape)
    result = publish_dataset(dataset, layout)
    manifest = result.manifest
    rows = ", ".join(f"{name} {info['rows']}" for name, info in manifest["splits"].items())
    action = "published" if result.written else "unchanged (same fingerprint), nothing rewritten"
    log.info("dataset %s from %s: %s rows; %s", manifest["fingerprint"][:12], dataset.source, rows, action)
    return result
