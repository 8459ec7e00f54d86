"""The champion/challenger rule: promote a newly trained model only when it is measurably better and no digit regresses.

Pure functions on plain numbers; the registry that remembers champions lives in `mnist_pipeline.champion.registry`.
Accuracies and recalls are fractions (0.9871); messages show them as percent and differences as points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.errors import PipelineError

# Accuracies are ratios of counts: float subtraction must not turn an exact tie at the margin into a win or a loss.
_TOLERANCE = 1e-9


class PromotionError(PipelineError):
    """A promotion, comparison or rollback cannot be done as asked."""


@dataclass(frozen=True)
class Candidate:
    """One trained model and how it scored on one test split.

    `data_fingerprint` and `test_rows` name the test split the numbers were measured on; `model_path` and `key`
    re-find the model file so it can be re-evaluated when the data changes.
    """

    key: str
    model_path: str
    run_name: str
    data_fingerprint: str
    test_rows: int
    test_accuracy: float
    per_class_recall: tuple[float, ...]

    def __post_init__(self) -> None:
        recall = tuple(float(value) for value in self.per_class_recall)
        object.__setattr__(self, "per_class_recall", recall)
        if isinstance(self.test_rows, bool) or not isinstance(self.test_rows, int) or self.test_rows < 1:
            raise PromotionError(f"{self.model_path}: expected a positive count of test rows, found {self.test_rows!r}")
        _check_fraction(self.test_accuracy, f"test accuracy of {self.model_path}")
        if not recall:
            raise PromotionError(f"{self.model_path}: expected per-class recall for every class, found none")
        for digit, value in enumerate(recall):
            _check_fraction(value, f"recall of digit {digit} of {self.model_path}")


def candidate_from_metrics(metrics: dict[str, Any], model: str) -> Candidate:
    """The candidate a run's metrics.json describes for `model`."""
    if model not in metrics.get("models", {}):
        raise PromotionError(
            f"run {metrics['run']['name']}: expected model {model!r}, found {sorted(metrics['models'])}"
        )
    entry = metrics["models"][model]
    return Candidate(
        key=entry["key"],
        model_path=entry["model_path"],
        run_name=metrics["run"]["name"],
        data_fingerprint=metrics["data"]["fingerprint"],
        test_rows=entry["test_rows"],
        test_accuracy=entry["test_accuracy"],
        per_class_recall=tuple(entry["per_class"]["recall"]),
    )


@dataclass(frozen=True)
class PromotionPolicy:
    """How much better a challenger must be; both thresholds are fractions (see `defaults`)."""

    min_accuracy_gain: float = defaults.PROMOTION_MARGIN
    max_recall_drop: float = defaults.MAX_RECALL_DROP

    def __post_init__(self) -> None:
        for name in ("min_accuracy_gain", "max_recall_drop"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise PromotionError(f"promotion policy: expected {name} as a fraction in [0, 1), found {value!r}")


@dataclass(frozen=True)
class Decision:
    """The outcome for one model, with the numbers that led to it; recall drops are positive when recall fell.

    The comparison fields stay None when there was no comparable champion.
    """

    model: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float | None = None
    accuracy_gain: float | None = None
    worst_recall_drop: float | None = None
    worst_recall_class: int | None = None
    forced: bool = False
    champion_run: str | None = None
    champion_model_path: str | None = None
    considered: bool = True


def same_test_split(a: Candidate, b: Candidate) -> bool:
    """Whether two candidates were scored on the same test rows, so their numbers can be compared."""
    return (a.data_fingerprint, a.test_rows) == (b.data_fingerprint, b.test_rows)


def decide_promotion(
    model: str, challenger: Candidate, champion: Candidate | None, policy: PromotionPolicy
) -> Decision:
    """Apply the rule: gain above the margin (strictly) and no digit's recall falling by more than the maximum."""
    scores = f"challenger {_percent(challenger.test_accuracy)}"
    if champion is None:
        return Decision(model, True, f"no champion yet; {scores} becomes the first champion", challenger.test_accuracy)
    gain, drop, digit = _compare(model, challenger, champion)
    beats = gain - policy.min_accuracy_gain > _TOLERANCE
    within = drop - policy.max_recall_drop <= _TOLERANCE
    versus = f"champion {_percent(champion.test_accuracy)} (run {champion.run_name})"
    margin = f"margin {_points(policy.min_accuracy_gain)}"
    allowed = _points(policy.max_recall_drop)
    if not beats:
        reason = f"{scores} does not beat {versus} by more than the {margin} (change {_signed_points(gain)} points)"
    elif not within:
        before, after = champion.per_class_recall[digit], challenger.per_class_recall[digit]
        reason = (
            f"{scores} beats {versus} by {_points(gain)} points ({margin}), but recall of digit {digit} drops "
            f"{_points(drop)} points ({_percent(before)} -> {_percent(after)}), more than the allowed {allowed}"
        )
    else:
        reason = (
            f"{scores} beats {versus} by {_points(gain)} points ({margin}); worst per-digit recall change "
            f"{_signed_points(-drop)} points (digit {digit}), within {allowed}"
        )
    return Decision(
        model=model,
        promoted=beats and within,
        reason=reason,
        challenger_accuracy=challenger.test_accuracy,
        champion_accuracy=champion.test_accuracy,
        accuracy_gain=gain,
        worst_recall_drop=drop,
        worst_recall_class=digit,
        champion_run=champion.run_name,
        champion_model_path=champion.model_path,
    )


def decide_forced(model: str, candidate: Candidate, champion: Candidate | None, reason: str) -> Decision:
    """A manual promotion: promoted regardless of the rule, with the rule's numbers when they are comparable."""
    if not reason.strip():
        raise PromotionError(f"forced promotion of {model}: expected a reason, found an empty one")
    scores = f"challenger {_percent(candidate.test_accuracy)}"
    numbers: tuple[float | None, float | None, int | None] = (None, None, None)
    compared = champion if champion is not None and same_test_split(candidate, champion) else None
    if compared is not None:
        numbers = _compare(model, candidate, compared)
        scores += f"; champion {_percent(compared.test_accuracy)} on the same test split"
    gain, drop, digit = numbers
    return Decision(
        model=model,
        promoted=True,
        reason=f"forced by hand: {reason.strip()} ({scores})",
        challenger_accuracy=candidate.test_accuracy,
        champion_accuracy=compared.test_accuracy if compared is not None else None,
        accuracy_gain=gain,
        worst_recall_drop=drop,
        worst_recall_class=digit,
        forced=True,
        champion_run=champion.run_name if champion is not None else None,
        champion_model_path=champion.model_path if champion is not None else None,
    )


def _check_fraction(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise PromotionError(f"{what}: expected a fraction between 0 and 1 (not percent), found {value!r}")


def _compare(model: str, challenger: Candidate, champion: Candidate) -> tuple[float, float, int]:
    """The accuracy gain, the largest per-class fall in recall (negative when all improved) and its class."""
    if len(challenger.per_class_recall) != len(champion.per_class_recall):
        raise PromotionError(
            f"{model}: challenger {challenger.model_path} has recall for {len(challenger.per_class_recall)} classes, "
            f"champion {champion.model_path} for {len(champion.per_class_recall)}; expected the same classes"
        )
    if not same_test_split(challenger, champion):
        raise PromotionError(
            f"{model}: challenger was scored on data {challenger.data_fingerprint[:12]} ({challenger.test_rows} rows), "
            f"champion {champion.model_path} on {champion.data_fingerprint[:12]} ({champion.test_rows} rows); "
            "expected the same test split: re-evaluate the champion on the challenger's test split first"
        )
    recalls = zip(champion.per_class_recall, challenger.per_class_recall, strict=True)
    drops = [before - after for before, after in recalls]
    digit = max(range(len(drops)), key=drops.__getitem__)
    return challenger.test_accuracy - champion.test_accuracy, drops[digit], digit


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


def _points(fraction: float) -> str:
    return f"{fraction * 100:.2f}"


def _signed_points(fraction: float) -> str:
    return f"{fraction * 100:+.2f}"
