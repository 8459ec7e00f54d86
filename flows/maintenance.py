"""The `mnist-maintenance` flow: the weekly garbage collection of the data dir, served beside the retrain."""

from __future__ import annotations

from prefect import flow

from flows.increments import open_layout
from mnist_pipeline import defaults
from mnist_pipeline.champion.retention import DEFAULT_GRACE_DAYS
from tasks.champion import gc_task
from tasks.guard import guarded


@flow(name="mnist-maintenance")
@guarded
def mnist_maintenance(
    data_dir: str = str(defaults.DATA_DIR), grace_days: float = DEFAULT_GRACE_DAYS, dry_run: bool = False
) -> list[str]:
    """Remove old unused models, evaluations, validation records and dataset versions; returns what went."""
    return gc_task(open_layout(data_dir), grace_days, dry_run)
