"""Prefect task: champion/challenger. Promote a freshly trained model only when it clearly beats the champion."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.champion.registry import find_champion, load_registry, record_decision
from mnist_pipeline.champion.rule import (
    Candidate,
    Decision,
    PromotionPolicy,
    candidate_from_metrics,
    decide_not_considered,
    decide_promotion,
    same_test_split,
)
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from tasks.guard import guarded

PROMOTION_ARTIFACT_KEY = "mnist-promotion"


def registry_path(data_dir: Path) -> Path:
    return DataLayout(data_dir).registry


def reevaluate(name: str, champion: Candidate, data_dir: Path, test_limit: int | None, fingerprint: str) -> Candidate:
    """Score the champion's saved model on the current test split, so both sides face the same test."""
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.model_files import load_model

    test = read_split(DataLayout(data_dir).pin(fingerprint).split_file("test")).head(test_limit)
    evaluation = evaluate_model(load_model(DataLayout(data_dir).model_file(name, champion.key)), test)
    return dataclasses.replace(
        champion,
        data_fingerprint=fingerprint,
        test_rows=test.rows,
        test_accuracy=float(evaluation.accuracy),
        per_class_recall=tuple(evaluation.per_class["recall"]),
    )


def render_promotion_markdown(run_name: str, decisions: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"# Champion/challenger, run {run_name}",
        "",
        "| model | promoted | compared with | why |",
        "|---|---|---|---|",
    ]
    for name, decision in decisions.items():
        reason = str(decision["reason"]).replace("|", "\\|")
        if not decision.get("considered", True):
            outcome, versus = "not considered (limited run)", "-"
        else:
            outcome = "**yes**" if decision["promoted"] else "no"
            versus = f"run {decision['champion_run']}" if decision.get("champion_run") else "no champion"
        lines.append(f"| {name} | {outcome} | {versus} | {reason} |")
    return "\n".join(lines)


@task(name="promote")
@guarded
def decide_task(
    metrics: dict[str, Any],
    data_dir: str,
    test_limit: int | None,
    min_gain: float,
    max_recall_drop: float,
    limited: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Decide promotion per model against the registry's champion; records nothing (see `record_task`).

    Call under `registry_lock`: the champion read here must still be the champion when the decision is recorded.
    `limited` (which limits, when a limited run may not promote) skips the rule and leaves the registry alone.
    """
    logger = get_run_logger()
    policy = PromotionPolicy(min_accuracy_gain=min_gain, max_recall_drop=max_recall_drop)
    registry = load_registry(registry_path(Path(data_dir)))
    fingerprint = metrics["data"]["fingerprint"]
    decisions = {}
    for name in metrics["models"]:
        challenger = candidate_from_metrics(metrics, name)
        if limited:
            detail = f"{limited}: the champions are unchanged (pass --promote-limited to compare it with them)"
            decision = decide_not_considered(name, challenger, "limited run", detail)
        else:
            decision = decide_against_champion(
                name, challenger, find_champion(registry, name), Path(data_dir), test_limit, fingerprint, policy
            )
        logger.info("%s: %s (%s)", name, "promoted" if decision.promoted else "not promoted", decision.reason)
        decisions[name] = decision.to_dict()
    return decisions


def decide_against_champion(
    name: str,
    challenger: Candidate,
    champion: Candidate | None,
    data_dir: Path,
    test_limit: int | None,
    fingerprint: str,
    policy: PromotionPolicy,
) -> Decision:
    """Apply the rule, first re-scoring a champion that was measured on other test data."""
    note = ""
    if champion is not None and not same_test_split(champion, challenger):
        if DataLayout(data_dir).model_file(name, champion.key).is_file():
            get_run_logger().info("%s: re-evaluating champion %s on the current test split", name, champion.run_name)
            champion = reevaluate(name, champion, data_dir, test_limit, fingerprint)
        else:
            note = f"champion model {champion.model_path} is missing, so it cannot defend its title; "
            champion = None
    decision = decide_promotion(name, challenger, champion, policy)
    return dataclasses.replace(decision, reason=note + decision.reason)


@task(name="record-promotion")
@guarded
def record_task(metrics: dict[str, Any], data_dir: str) -> None:
    """Record every considered decision in the registry and post the `mnist-promotion` artifact.

    The last step of a run, under the same `registry_lock` as `decide_task`, after metrics.json and the report.
    """
    path = registry_path(Path(data_dir))
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for name, decision in metrics["champion"].items():
        if decision.get("considered", True):
            record_decision(path, Decision(**decision), candidate_from_metrics(metrics, name), at=at)
    create_markdown_artifact(
        render_promotion_markdown(metrics["run"]["name"], metrics["champion"]),
        key=PROMOTION_ARTIFACT_KEY,
        description="Promotion decisions",
    )
