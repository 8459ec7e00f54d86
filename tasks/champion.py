"""Prefect tasks of the champion package: champion/challenger, both under the flow's `registry_lock` (decide first,
record last, after the report and metrics.json), and the data dir's garbage collection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.champion.decide import decide_run, record_run
from mnist_pipeline.champion.retention import collect_garbage
from mnist_pipeline.champion.rule import Candidate, Decision, PromotionPolicy
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.report.artifact_content import render_promotion_markdown
from tasks.guard import guarded


@task(name="promote")
@guarded
def decide_task(
    layout: DataLayout,
    candidates: Mapping[str, Candidate],
    test_limit: int | None,
    policy: PromotionPolicy,
    limited: str | None = None,
) -> dict[str, Decision]:
    """Decide promotion per model against the registry's champion; records nothing (see `record_task`)."""
    return decide_run(layout, candidates, test_limit, policy, limited)


@task(name="record-promotion")
@guarded
def record_task(
    layout: DataLayout, run_name: str, decisions: Mapping[str, Decision], candidates: Mapping[str, Candidate]
) -> None:
    """Record every considered decision in the registry and post the `mnist-promotion` artifact."""
    record_run(layout, decisions, candidates, at=datetime.now(UTC).isoformat(timespec="seconds"))
    shown = {name: decision.to_dict() for name, decision in decisions.items()}
    create_markdown_artifact(
        render_promotion_markdown(run_name, shown), key="mnist-promotion", description="Promotion decisions"
    )


@task(name="gc")
@guarded
def gc_task(layout: DataLayout, grace_days: float, dry_run: bool) -> list[str]:
    """Delete what no champion needs and nobody used for `grace_days`; returns what went (or would go)."""
    removed = collect_garbage(layout, grace_days, dry_run)
    get_run_logger().info("%d item(s) %s", len(removed), "would go (dry run)" if dry_run else "removed")
    return [str(path) for path in removed]
