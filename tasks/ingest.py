"""Prefect tasks wrapping ingestion: write a dataset version, grow it by the increments, publish what passed."""

from __future__ import annotations

from typing import Any

from prefect import task

from mnist_pipeline.data.ingest import ingest, publish_version
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.increments.versions import grow_version
from tasks.guard import guarded


@task(name="ingest", retries=0)
@guarded
def ingest_task(source: str, layout: DataLayout, image_shape: tuple[int, int]) -> dict[str, Any]:
    """Write `source` as a dataset version, refusing images not of `image_shape`; returns its manifest (the version
    becomes current only after the gate)."""
    return ingest(source, layout, image_shape).manifest


@task(name="publish")
@guarded
def publish_task(layout: DataLayout, fingerprint: str) -> None:
    """Make the version that passed the gate current; a separate step so a cached validation still publishes."""
    publish_version(layout, fingerprint)


@task(name="grow")
@guarded
def grow_task(layout: DataLayout, base_fingerprint: str) -> dict[str, Any]:
    """Write the base version grown by the accepted increments; returns its manifest (the base's without any)."""
    return grow_version(layout, base_fingerprint).manifest
