"""Prefect tasks: champion/challenger. Promote a freshly trained model only when it clearly beats the champion.

Both run under the flow's `registry_lock`: decide first, record last (after the report and metrics.json).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.champion.decide import decide_run, record_run
from mnist_pipeline.champion.rule import PromotionPolicy
from mnist_pipeline.report.artifact_content import render_promotion_markdown
from tasks.guard import guarded


@task(name="promote")
@guarded
def decide_task(
    metrics: dict[str, Any],
    data_dir: str,
    test_limit: int | None,
    min_gain: float,
    max_recall_drop: float,
    max_test_drop: float,
    limited: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Decide promotion per model against the registry's champion, on `new` and `test`; records nothing (see
    `record_task`)."""
    policy = PromotionPolicy(min_gain, max_recall_drop, max_test_drop)
    return decide_run(metrics, Path(data_dir), test_limit, policy, limited)


@task(name="record-promotion")
@guarded
def record_task(metrics: dict[str, Any], data_dir: str) -> None:
    """Record every considered decision in the registry and post the `mnist-promotion` artifact."""
    record_run(metrics, Path(data_dir), at=datetime.now(UTC).isoformat(timespec="seconds"))
    create_markdown_artifact(
        render_promotion_markdown(metrics["run"]["name"], metrics["champion"]),
        key="mnist-promotion",
        description="Promotion decisions",
    )
