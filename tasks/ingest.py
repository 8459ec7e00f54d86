"""Prefect task wrapping ingestion: returns the manifest, data stays on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from mnist_pipeline.ingest import ingest


@task(name="ingest", retries=0)
def ingest_task(source: str, data_dir: Path) -> dict[str, Any]:
    """Write `source` as a dataset version under `data_dir`; returns its manifest (current only after the gate)."""
    return ingest(source, data_dir).manifest
