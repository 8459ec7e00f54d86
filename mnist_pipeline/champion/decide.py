"""Champion/challenger for one run: decide each model against its champion, then record the decisions.

The rule is in `champion.rule`, the registry in `champion.registry`; this puts them together for a run's
metrics.json. Call both steps under `registry_lock`: the champion read when deciding must still be the champion
when the decision is recorded.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from mnist_pipeline.champion.registry import find_champion, load_registry, record_decision
from mnist_pipeline.champion.rule import (
    Candidate,
    Decision,
    PromotionPolicy,
    candidate_from_metrics,
    decide_promotion,
    same_test_split,
)
from mnist_pipeline.data.layout import DataLayout

log = logging.getLogger(__name__)


def decide_against_champion(
    layout: DataLayout,
    name: str,
    challenger: Candidate,
    champion: Candidate | None,
    test_limit: int | None,
    policy: PromotionPolicy,
) -> Decision:
    """Apply the rule, first re-scoring a champion that was measured on other test data, so both face one test."""
    from mnist_pipeline.modeling.evaluation import evaluate_saved_model

    note = ""
    if champion is not None and not same_test_split(champion, challenger):
        if layout.model_file(name, champion.key).is_file():
            log.info("%s: re-evaluating champion %s on the current test split", name, champion.run_name)
            test_file = layout.pin(challenger.data_fingerprint).split_file("test")
            evaluation = evaluate_saved_model(layout, name, champion.key, test_file, test_limit)
            champion = dataclasses.replace(
                champion,
                data_fingerprint=challenger.data_fingerprint,
                test_rows=evaluation.rows,
                test_accuracy=float(evaluation.accuracy),
                per_class_recall=tuple(evaluation.per_class["recall"]),
            )
        else:
            note = f"champion model {champion.model_path} is missing, so it cannot defend its title; "
            champion = None
    decision = decide_promotion(name, challenger, champion, policy)
    return dataclasses.replace(decision, reason=note + decision.reason)


def decide_run(
    metrics: dict[str, Any], data_dir: Path, test_limit: int | None, policy: PromotionPolicy, limited: str | None
) -> dict[str, dict[str, Any]]:
    """Each model of the run against the registry's champion; records nothing (see `record_run`).

    `limited` (which limits, when a limited run may not promote) skips the rule and leaves the registry alone.
    """
    layout = DataLayout(data_dir)
    registry = load_registry(layout.registry)
    decisions = {}
    for name in metrics["models"]:
        challenger = candidate_from_metrics(metrics, name)
        if limited:
            reason = f"not considered (limited run); {limited}: the champions are unchanged "
            reason += "(pass --promote-limited to compare it with them)"
            decision = Decision(name, False, reason, challenger.test_accuracy, considered=False)
        else:
            champion = find_champion(registry, name)
            decision = decide_against_champion(layout, name, challenger, champion, test_limit, policy)
        log.info("%s: %s (%s)", name, "promoted" if decision.promoted else "not promoted", decision.reason)
        decisions[name] = dataclasses.asdict(decision)
    return decisions


def record_run(metrics: dict[str, Any], data_dir: Path, at: str) -> None:
    """Record every considered decision of the run (metrics["champion"]) in the registry."""
    path = DataLayout(data_dir).registry
    for name, decision in metrics["champion"].items():
        if decision.get("considered", True):
            record_decision(path, Decision(**decision), candidate_from_metrics(metrics, name), at=at)
