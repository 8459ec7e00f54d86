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
    SetScore,
    candidate_from_metrics,
    decide_promotion,
    same_new_split,
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
    """Apply the rule, first re-scoring the champion on whichever of the challenger's sets it was not measured on:
    `test` when the test split (or the limit) changed, `new` whenever it grew, so both face the same rows."""
    note = ""
    if champion is not None and needs_rescoring(challenger, champion):
        if layout.model_file(name, champion.key).is_file():
            champion = rescore_champion(layout, name, challenger, champion, test_limit)
        else:
            note = f"champion model {champion.model_path} is missing, so it cannot defend its title; "
            champion = None
    decision = decide_promotion(name, challenger, champion, policy)
    return dataclasses.replace(decision, reason=note + decision.reason)


def needs_rescoring(challenger: Candidate, champion: Candidate) -> bool:
    """Whether the champion's recorded scores miss one of the challenger's sets' rows."""
    grown = challenger.new is not None and not same_new_split(champion, challenger)
    return grown or not same_test_split(champion, challenger)


def rescore_champion(
    layout: DataLayout, name: str, challenger: Candidate, champion: Candidate, test_limit: int | None
) -> Candidate:
    """The champion with its scores on the challenger's `test` and `new` sets, re-evaluated where its recorded
    scores are for other rows (its saved model scored by the one function runs use, `evaluate_saved_model`)."""
    from mnist_pipeline.modeling.evaluation import evaluate_saved_model

    pinned = layout.pin(challenger.data_fingerprint)
    if not same_test_split(champion, challenger):
        log.info("%s: re-evaluating champion %s on the current test split", name, champion.run_name)
        evaluation = evaluate_saved_model(layout, name, champion.key, pinned.split_file("test"), test_limit)
        champion = dataclasses.replace(
            champion,
            data_fingerprint=challenger.data_fingerprint,
            test_sha256=challenger.test_sha256,
            test_rows=evaluation.rows,
            test_accuracy=float(evaluation.accuracy),
            per_class_recall=tuple(evaluation.per_class["recall"]),
        )
    if challenger.new is not None and not same_new_split(champion, challenger):
        rows = challenger.new.rows
        log.info("%s: re-evaluating champion %s on the new set (%d images)", name, champion.run_name, rows)
        evaluation = evaluate_saved_model(layout, name, champion.key, pinned.split_file("new"), None)
        scores = SetScore(
            challenger.new.sha256, evaluation.rows, float(evaluation.accuracy), tuple(evaluation.per_class["recall"])
        )
        champion = dataclasses.replace(champion, new=scores)
    return champion


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
