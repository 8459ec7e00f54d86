"""Prefect task wrapping the data dir's garbage collection (`champion.retention.collect_garbage`)."""

from __future__ import annotations

from prefect import get_run_logger, task

from mnist_pipeline.champion.retention import collect_garbage
from mnist_pipeline.data.layout import DataLayout
from tasks.guard import guarded


@task(name="gc")
@guarded
def gc_task(layout: DataLayout, grace_days: float, dry_run: bool) -> list[str]:
    """Delete what no champion needs and nobody used for `grace_days`; returns what went (or would go)."""
    removed = collect_garbage(layout, grace_days, dry_run)
    get_run_logger().info("%d item(s) %s", len(removed), "would go (dry run)" if dry_run else "removed")
    return [str(path) for path in removed]
