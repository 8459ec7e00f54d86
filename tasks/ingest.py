"""Prefect task wrapping ingestion: returns the manifest, data stays on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from mnist_pipeline.ingest import ingest
from tasks.guard import guarded


@task(name="ingest", retries=0)
@guarded
def ingest_task(source: str, data_dir: Path, image_shape: tuple[int, int]) -> dict[str, Any]:
    """Ingest `source` into `data_dir/parquet`, refusing images not of `image_shape`; returns the manifest."""
    return ingest(source, data_dir, image_shape).manifest
