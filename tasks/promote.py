"""Prefect task: champion/challenger. Promote a freshly trained model only when it clearly beats the champion."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from mnist_pipeline.champion import find_champion, load_registry, record_decision
from mnist_pipeline.layout import DataLayout
from mnist_pipeline.promotion import (
    Candidate,
    PromotionPolicy,
    candidate_from_metrics,
    decide_promotion,
    same_test_split,
)
from mnist_pipeline.store import read_split
from tasks.guard import guarded

PROMOTION_ARTIFACT_KEY = "mnist-promotion"


def registry_path(data_dir: Path) -> Path:
    return DataLayout(data_dir).models / "champions.json"


def reevaluate(champion: Candidate, data_dir: Path, test_limit: int | None, fingerprint: str) -> Candidate:
    """Score the champion's saved model on the current test split, so both sides face the same test."""
    from mnist_pipeline.evaluation import evaluate_model
    from mnist_pipeline.model_files import load_model

    test = read_split(DataLayout(data_dir).pin(fingerprint).split_file("test")).head(test_limit)
    evaluation = evaluate_model(load_model(Path(champion.model_path)), test)
    return dataclasses.replace(
        champion,
        data_fingerprint=fingerprint,
        test_rows=test.rows,
        test_accuracy=float(evaluation.accuracy),
        per_class_recall=tuple(evaluation.per_class["recall"]),
    )


def render_promotion_markdown(run_name: str, decisions: dict[str, dict[str, Any]]) -> str:
    lines = [f"# Champion/challenger, run {run_name}", "", "| model | promoted | why |", "|---|---|---|"]
    for name, decision in decisions.items():
        reason = str(decision["reason"]).replace("|", "\\|")
        lines.append(f"| {name} | {'**yes**' if decision['promoted'] else 'no'} | {reason} |")
    return "\n".join(lines)


@task(name="promote")
@guarded
def promote_task(
    metrics: dict[str, Any], data_dir: str, test_limit: int | None, min_gain: float, max_recall_drop: float
) -> dict[str, dict[str, Any]]:
    """Decide, record and announce promotion per model; returns each decision for metrics.json."""
    logger = get_run_logger()
    policy = PromotionPolicy(min_accuracy_gain=min_gain, max_recall_drop=max_recall_drop)
    path = registry_path(Path(data_dir))
    fingerprint, run_name = metrics["data"]["fingerprint"], metrics["run"]["name"]
    decisions = {}
    for name in metrics["models"]:
        challenger = candidate_from_metrics(metrics, name)
        champion = find_champion(load_registry(path), name)
        note = ""
        if champion is not None and not same_test_split(champion, challenger):
            if Path(champion.model_path).is_file():
                logger.info("%s: re-evaluating champion %s on the current test split", name, champion.run_name)
                champion = reevaluate(champion, Path(data_dir), test_limit, fingerprint)
            else:
                note = f"champion model {champion.model_path} is missing, so it cannot defend its title; "
                champion = None
        decision = decide_promotion(name, challenger, champion, policy)
        decision = dataclasses.replace(decision, reason=note + decision.reason)
        record_decision(path, decision, challenger, at=datetime.now(UTC).isoformat(timespec="seconds"))
        logger.info("%s: %s (%s)", name, "promoted" if decision.promoted else "kept champion", decision.reason)
        decisions[name] = decision.to_dict()
    create_markdown_artifact(
        render_promotion_markdown(run_name, decisions), key=PROMOTION_ARTIFACT_KEY, description="Promotion decisions"
    )
    return decisions
