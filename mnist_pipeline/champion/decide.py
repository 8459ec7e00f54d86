"""Champion/challenger: the rule (`champion.rule`) and the registry (`champion.registry`) put together for a run
and for `mnist-pipeline champion`. Call a run's two steps under `registry_lock`: the champion read when deciding
must still be the champion when the decision is recorded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mnist_pipeline.champion.registry import (
    Registry,
    find_champion,
    force_promote,
    load_registry,
    record_decision,
    rollback,
)
from mnist_pipeline.champion.rule import (
    Candidate,
    Decision,
    PromotionPolicy,
    SetScore,
    candidate_from_metrics,
    count_class_rows,
    decide_promotion,
    same_new_split,
    same_test_split,
)
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import hold_lock
from mnist_pipeline.runs.metrics import ModelOutcome
from mnist_pipeline.runs.names import check_run_name

log = logging.getLogger(__name__)


def decide_against_champion(
    layout: DataLayout,
    name: str,
    challenger: Candidate,
    champion: Candidate | None,
    test_limit: int | None,
    policy: PromotionPolicy,
) -> Decision:
    """Apply the rule, first re-scoring the champion where its scores are for other rows than the challenger's."""
    note = ""
    grown = challenger.new is not None and champion is not None and not same_new_split(champion, challenger)
    if champion is not None and (grown or not same_test_split(champion, challenger)):
        if layout.model_file(name, champion.key).is_file():
            champion = rescore_champion(layout, name, challenger, champion, test_limit)
        else:
            note = f"champion model {champion.model_path} is missing, so it cannot defend its title; "
            champion = None
    decision = decide_promotion(name, challenger, champion, policy)
    return dataclasses.replace(decision, reason=note + decision.reason)


def rescore_champion(
    layout: DataLayout, name: str, challenger: Candidate, champion: Candidate, test_limit: int | None
) -> Candidate:
    """The champion re-scored (as runs score) on whichever of the challenger's sets its recorded scores miss."""
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


def candidate_from_outcome(outcome: ModelOutcome, run_name: str, data: Mapping[str, Any]) -> Candidate:
    """The candidate a run's trained and evaluated model is; `data` is the run's metrics.json `data` section."""
    test, new = outcome.scores.test, outcome.scores.new
    new_score = None
    if new is not None:
        recall, counts = tuple(new.per_class["recall"]), count_class_rows(new.confusion_matrix)
        new_score = SetScore(data["new_sha256"], new.rows, new.accuracy, recall, counts)
    return Candidate(
        key=outcome.trained.key,
        model_path=outcome.trained.model_path,
        run_name=run_name,
        data_fingerprint=data["fingerprint"],
        test_rows=test.rows,
        test_accuracy=test.accuracy,
        per_class_recall=tuple(test.per_class["recall"]),
        test_sha256=data.get("test_sha256"),
        new=new_score,
        test_class_rows=count_class_rows(test.confusion_matrix),
    )


def decide_run(
    layout: DataLayout,
    candidates: Mapping[str, Candidate],
    test_limit: int | None,
    policy: PromotionPolicy,
    limited: str | None,
) -> dict[str, Decision]:
    """Each model of the run against the registry's champion; records nothing (see `record_run`). `limited` (the
    limits of a run that may not promote) skips the rule."""
    registry = load_registry(layout.registry)
    decisions = {}
    for name, challenger in candidates.items():
        if limited:
            reason = f"not considered (limited run); {limited}: the champions are unchanged "
            reason += "(pass --promote-limited to compare it with them)"
            decision = Decision(name, False, reason, challenger.test_accuracy, considered=False)
        else:
            champion = find_champion(registry, name)
            decision = decide_against_champion(layout, name, challenger, champion, test_limit, policy)
        log.info("%s: %s (%s)", name, "promoted" if decision.promoted else "not promoted", decision.reason)
        decisions[name] = decision
    return decisions


def record_run(
    layout: DataLayout, decisions: Mapping[str, Decision], candidates: Mapping[str, Candidate], at: str
) -> None:
    """Record every considered decision of the run in the registry."""
    for name, decision in decisions.items():
        if decision.considered:
            record_decision(layout.registry, decision, candidates[name], at=at)


def describe_no_new_data(registry: Registry, models: Sequence[str], fingerprint: str) -> str | None:
    """The one line to log when every model's champion was trained on exactly the dataset `fingerprint`, so a
    retrain could only repeat it; None when some model has no champion yet or its champion saw other data."""
    champions = [find_champion(registry, model) for model in models]
    if not champions or any(champion is None or champion.data_fingerprint != fingerprint for champion in champions):
        return None
    return f"no new data since the champions' dataset {fingerprint[:12]}: nothing to train"


def find_warm_starts(layout: DataLayout, registry: Registry, models: Sequence[str]) -> dict[str, str]:
    """Each model's champion key to fine-tune, where its saved model opens; the others train from scratch."""
    from mnist_pipeline.modeling.serving import find_model_damage  # onnxruntime: only for a warm start

    starts = {}
    for model in models:
        champion = find_champion(registry, model)
        if champion is None:
            continue
        damage = find_model_damage(layout.model_file(model, champion.key))
        if damage is None:
            starts[model] = champion.key
        else:
            log.warning("%s: cannot fine-tune champion %s (%s); training from scratch", model, champion.key, damage)
    return starts


def force_promote_run(layout: DataLayout, reports_dir: Path, model: str, run: str, reason: str, at: str) -> Candidate:
    """Make `model` from run `run` (its metrics.json under reports_dir/runs/) the champion, whatever the rule says."""
    metrics_path = reports_dir / "runs" / check_run_name(run) / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{metrics_path}: expected the run's metrics.json, found: {exc}") from exc
    try:
        candidate = candidate_from_metrics(metrics, model)
    except (KeyError, TypeError) as exc:
        raise DataFormatError(f"{metrics_path}: expected a metrics.json of this pipeline, found no {exc}") from exc
    model_file = layout.model_file(model, candidate.key)
    # The gc lock held shared from the check to the promotion: a collection in between would leave a champion
    # without its file.
    with hold_lock(layout.gc_lock, shared=True):
        if not model_file.is_file():
            raise DataFormatError(f"{model_file}: expected the run's saved model, found no such file")
        force_promote(layout.registry, model, candidate, reason, at)
    return candidate


def roll_back(layout: DataLayout, model: str, reason: str, at: str) -> tuple[Candidate, Path]:
    """Restore `model`'s previous champion; returns it and its model file (which may have been deleted since)."""
    registry = rollback(layout.registry, model, reason, at)
    restored = registry.champions[model].candidate
    return restored, layout.model_file(model, restored.key)
