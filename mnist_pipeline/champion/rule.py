"""The champion/challenger rule: promote a newly trained model only when it is measurably better and no digit regresses.

Pure functions on plain numbers; the registry that remembers champions lives in `mnist_pipeline.champion.registry`.
Accuracies and recalls are fractions (0.9871); messages show them as percent and differences as points.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.errors import PipelineError

# Accuracies are ratios of counts: float subtraction must not turn an exact tie at the margin into a win or a loss.
_TOLERANCE = 1e-9
# A digit's recall fall blocks promotion only when it is this unlikely to be chance (`find_recall_regression`).
RECALL_FALL_P_VALUE = 0.05


class PromotionError(PipelineError):
    """A promotion, comparison or rollback cannot be done as asked."""


@dataclass(frozen=True)
class SetScore:
    """How a model scored on the `new` set (the accepted increments' test parts): `sha256` and `rows` name the rows
    scored, so scores on another `new` split (it grows with each increment) are never compared with these."""

    sha256: str
    rows: int
    accuracy: float
    per_class_recall: tuple[float, ...]
    class_rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        recall = _check_scores(self.rows, self.accuracy, self.per_class_recall, f"new set {self.sha256[:12]}", "new")
        object.__setattr__(self, "per_class_recall", recall)
        object.__setattr__(self, "class_rows", tuple(int(rows) for rows in self.class_rows))


@dataclass(frozen=True)
class Candidate:
    """One trained model and how it scored on `test` and, when there was one, `new`. `test_sha256` (None in older
    registry entries: `data_fingerprint` stands in) and `test_rows` name the rows scored; `test_class_rows` (and
    `new.class_rows`) count each digit's images, empty when unknown."""

    key: str
    model_path: str
    run_name: str
    data_fingerprint: str
    test_rows: int
    test_accuracy: float
    per_class_recall: tuple[float, ...]
    test_sha256: str | None = None
    new: SetScore | None = None
    test_class_rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        recall = _check_scores(self.test_rows, self.test_accuracy, self.per_class_recall, self.model_path, "test")
        object.__setattr__(self, "per_class_recall", recall)
        object.__setattr__(self, "test_class_rows", tuple(int(rows) for rows in self.test_class_rows))


def candidate_from_record(record: dict[str, Any]) -> Candidate:
    """A candidate as the registry stores it (older entries: test numbers only); TypeError, KeyError or
    PromotionError when it is not one."""
    if not isinstance(record, dict):
        raise TypeError(f"expected an object, found {type(record).__name__}")
    new = record.get("new")
    return Candidate(**{**record, "new": SetScore(**new) if new is not None else None})


def candidate_from_metrics(metrics: dict[str, Any], model: str) -> Candidate:
    """The candidate a run's metrics.json describes for `model` (with its `new` scores when it has them)."""
    if model not in metrics.get("models", {}):
        raise PromotionError(
            f"run {metrics['run']['name']}: expected model {model!r}, found {sorted(metrics['models'])}"
        )
    entry, data = metrics["models"][model], metrics["data"]
    new = (entry.get("eval") or {}).get("new")
    new_score = None
    if new:
        recall, counts = tuple(new["per_class"]["recall"]), count_class_rows(new.get("confusion_matrix"))
        new_score = SetScore(data["new_sha256"], new["rows"], new["accuracy"], recall, counts)
    return Candidate(
        key=entry["key"],
        model_path=entry["model_path"],
        run_name=metrics["run"]["name"],
        data_fingerprint=data["fingerprint"],
        test_rows=entry["test_rows"],
        test_accuracy=entry["test_accuracy"],
        per_class_recall=tuple(entry["per_class"]["recall"]),
        test_sha256=data.get("test_sha256"),
        new=new_score,
        test_class_rows=count_class_rows(entry.get("confusion_matrix")),
    )


def count_class_rows(confusion_matrix: list[list[int]] | None) -> tuple[int, ...]:
    """Each digit's images in a set: the confusion matrix's row sums (rows are true labels); () when absent."""
    return tuple(int(sum(row)) for row in confusion_matrix) if confusion_matrix else ()


@dataclass(frozen=True)
class PromotionPolicy:
    """How much better a challenger must be, and how much worse it may be; fractions (see `defaults`)."""

    min_accuracy_gain: float = defaults.PROMOTION_MARGIN
    max_recall_drop: float = defaults.MAX_RECALL_DROP
    max_test_drop: float = defaults.MAX_TEST_DROP

    def __post_init__(self) -> None:
        for name in ("min_accuracy_gain", "max_recall_drop", "max_test_drop"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise PromotionError(f"promotion policy: expected {name} as a fraction in [0, 1), found {value!r}")


@dataclass(frozen=True)
class Decision:
    """The outcome for one model and the numbers that led to it (docs/training.md lists them): plain fields for
    `test`, `new_` ones for `new`; recall drops are positive when recall fell; None where nothing was compared."""

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
    new_rows: int | None = None
    challenger_new_accuracy: float | None = None
    champion_new_accuracy: float | None = None
    new_accuracy_gain: float | None = None
    new_worst_recall_drop: float | None = None
    new_worst_recall_class: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """As metrics.json's `champion.<model>` records it."""
        return asdict(self)


def same_test_split(a: Candidate, b: Candidate) -> bool:
    """Whether both were scored on the same test rows: content (the fingerprint before `test_sha256`) and count."""
    if a.test_sha256 and b.test_sha256:
        return (a.test_sha256, a.test_rows) == (b.test_sha256, b.test_rows)
    return (a.data_fingerprint, a.test_rows) == (b.data_fingerprint, b.test_rows)


def same_new_split(a: Candidate, b: Candidate) -> bool:
    """Whether both were scored on the same `new` rows (the set grows with every accepted increment)."""
    return a.new is not None and b.new is not None and (a.new.sha256, a.new.rows) == (b.new.sha256, b.new.rows)


def decide_promotion(
    model: str, challenger: Candidate, champion: Candidate | None, policy: PromotionPolicy
) -> Decision:
    """Apply the rule (`_judge`) against `champion`; without one, the challenger becomes the first champion."""
    if champion is None:
        scores = f"challenger {_percent(challenger.test_accuracy)}"
        if challenger.new is not None:
            scores += f" on test, {_percent(challenger.new.accuracy)} on new"
        return Decision(
            model,
            True,
            f"no champion yet; {scores} becomes the first champion",
            challenger.test_accuracy,
            **_new_numbers(challenger, None, None),
        )
    test = _compare(model, "test", challenger, champion)
    new = _compare(model, "new", challenger, champion) if challenger.new is not None else None
    compared = {"new": new, "test": test} if new is not None else {"test": test}
    promoted, reason = _judge(challenger, champion, policy, compared)
    return Decision(
        model=model,
        promoted=promoted,
        reason=reason,
        challenger_accuracy=challenger.test_accuracy,
        champion_accuracy=champion.test_accuracy,
        accuracy_gain=challenger.test_accuracy - champion.test_accuracy,
        worst_recall_drop=test[0],
        worst_recall_class=test[1],
        champion_run=champion.run_name,
        champion_model_path=champion.model_path,
        **_new_numbers(challenger, champion, new),
    )


def _set_scores(candidate: Candidate, name: str) -> tuple[int, float, tuple[float, ...], tuple[int, ...]]:
    """Rows, accuracy, per-digit recall and per-digit image counts of `candidate` on set `name`."""
    if name == "new" and candidate.new is not None:
        new = candidate.new
        return new.rows, new.accuracy, new.per_class_recall, new.class_rows
    return candidate.test_rows, candidate.test_accuracy, candidate.per_class_recall, candidate.test_class_rows


def _judge(
    challenger: Candidate, champion: Candidate, policy: PromotionPolicy, compared: dict[str, tuple[float, int]]
) -> tuple[bool, str]:
    """One loop over the sets compared (`new` when there is one, and `test`): win on the first by more than the
    margin, lose at most `max_test_drop` on `test` when it is not the deciding set, and no digit's recall falling
    by more than the maximum, beyond chance, on any set."""
    sets = list(compared)
    deciding, allowed, margin = sets[0], _points(policy.max_recall_drop), _points(policy.min_accuracy_gain)
    failures, described = [], []
    for name in sets:
        rows, accuracy, recall, class_rows = _set_scores(challenger, name)
        _, before, old_recall, _ = _set_scores(champion, name)
        gain = accuracy - before
        run = f" (run {champion.run_name})" if name == deciding else ""
        described.append(
            f"{name}, {rows} images: challenger {_percent(accuracy)} vs champion {_percent(before)}{run}, "
            f"{_signed_points(gain)} points"
        )
        if name == deciding and gain - policy.min_accuracy_gain <= _TOLERANCE:
            failures.append(f"does not beat the champion on {name} by more than the margin {margin}")
        if name != deciding and -gain - policy.max_test_drop > _TOLERANCE:
            failures.append(
                f"loses {_points(-gain)} points on {name}, more than the allowed {_points(policy.max_test_drop)}"
            )
        digit = find_recall_regression(old_recall, recall, class_rows, policy.max_recall_drop)
        if digit is not None:
            failures.append(
                f"recall of digit {digit} drops {_points(old_recall[digit] - recall[digit])} points on {name} "
                f"({_percent(old_recall[digit])} -> {_percent(recall[digit])}), more than the allowed {allowed}"
            )
    scores = "; ".join(described)
    if failures:
        return False, f"{'; '.join(failures)} ({scores})"
    worst = max(sets, key=lambda name: compared[name][0])
    drop, digit = compared[worst]
    within = f"within {allowed}"
    if drop - policy.max_recall_drop > _TOLERANCE:
        within = f"more than {allowed} but within chance on its {_set_scores(challenger, worst)[3][digit]} images"
    held = f" and loses at most {_points(policy.max_test_drop)} points on test" if deciding != "test" else ""
    return True, (
        f"beats the champion on {deciding} by more than the margin {margin}{held}; worst per-digit recall change "
        f"{_signed_points(-drop)} points (digit {digit} on {worst}), {within} ({scores})"
    )


def _new_numbers(
    challenger: Candidate, champion: Candidate | None, new: tuple[float, int] | None
) -> dict[str, float | int | None]:
    """The Decision's `new_` fields: the challenger's `new` scores and, when compared, the champion's."""
    if challenger.new is None:
        return {}
    numbers: dict[str, float | int | None] = {
        "new_rows": challenger.new.rows,
        "challenger_new_accuracy": challenger.new.accuracy,
    }
    if champion is not None and champion.new is not None and new is not None:
        numbers |= {
            "champion_new_accuracy": champion.new.accuracy,
            "new_accuracy_gain": challenger.new.accuracy - champion.new.accuracy,
            "new_worst_recall_drop": new[0],
            "new_worst_recall_class": new[1],
        }
    return numbers


def _describe_new(candidate: Candidate) -> str:
    if candidate.new is None:
        return "no new set"
    return f"a new set of {candidate.new.rows} rows ({candidate.new.sha256[:12]})"


def decide_forced(model: str, candidate: Candidate, champion: Candidate | None, reason: str) -> Decision:
    """A manual promotion: promoted regardless of the rule, with the rule's numbers where they are comparable."""
    if not reason.strip():
        raise PromotionError(f"forced promotion of {model}: expected a reason, found an empty one")
    scores = f"challenger {_percent(candidate.test_accuracy)}"
    gain: float | None = None
    test: tuple[float | None, int | None] = (None, None)
    compared = champion if champion is not None and same_test_split(candidate, champion) else None
    if compared is not None:
        test = _compare(model, "test", candidate, compared)
        gain = candidate.test_accuracy - compared.test_accuracy
        scores += f"; champion {_percent(compared.test_accuracy)} on the same test split"
    new_champion = champion if champion is not None and same_new_split(candidate, champion) else None
    new = _compare(model, "new", candidate, new_champion) if new_champion is not None else None
    if new_champion is not None and candidate.new is not None and new_champion.new is not None:
        scores += f"; on the same new set challenger {_percent(candidate.new.accuracy)}, "
        scores += f"champion {_percent(new_champion.new.accuracy)}"
    return Decision(
        model=model,
        promoted=True,
        reason=f"forced by hand: {reason.strip()} ({scores})",
        challenger_accuracy=candidate.test_accuracy,
        champion_accuracy=compared.test_accuracy if compared is not None else None,
        accuracy_gain=gain,
        worst_recall_drop=test[0],
        worst_recall_class=test[1],
        forced=True,
        champion_run=champion.run_name if champion is not None else None,
        champion_model_path=champion.model_path if champion is not None else None,
        **_new_numbers(candidate, new_champion, new),
    )


def _check_scores(rows: int, accuracy: float, recall: tuple[float, ...], where: str, split: str) -> tuple[float, ...]:
    """The recall as floats, once rows, accuracy and recall are checked to be counts and fractions."""
    recall = tuple(float(value) for value in recall)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise PromotionError(f"{where}: expected a positive count of {split} rows, found {rows!r}")
    _check_fraction(accuracy, f"{split} accuracy of {where}")
    if not recall:
        raise PromotionError(f"{where}: expected per-class recall for every class, found none")
    for digit, value in enumerate(recall):
        _check_fraction(value, f"recall of digit {digit} of {where}")
    return recall


def find_recall_regression(
    before: tuple[float, ...], after: tuple[float, ...], class_rows: tuple[int, ...], limit: float
) -> int | None:
    """The digit whose recall fell the most by more than `limit`, or None. With each digit's image count known, a
    fall counts only beyond chance (one-sided two-proportion z-test, p < 0.05): on a few hundred `new` images one
    image is ~3 points of a digit's recall, and the rule must not block on a coin flip."""
    falls = [
        digit
        for digit, (old, now) in enumerate(zip(before, after, strict=True))
        if old - now - limit > _TOLERANCE and (not class_rows or _beyond_chance(old, now, class_rows[digit]))
    ]
    return max(falls, key=lambda digit: before[digit] - after[digit]) if falls else None


def _beyond_chance(before: float, after: float, rows: int) -> bool:
    """Whether recall falling from `before` to `after` on the same `rows` images is significant (p < 0.05)."""
    pooled = (before + after) / 2
    spread = math.sqrt(pooled * (1 - pooled) * 2 / rows) if rows > 0 else 0.0
    if spread == 0.0:
        return rows > 0
    return 0.5 * math.erfc((before - after) / spread / math.sqrt(2)) < RECALL_FALL_P_VALUE


def _check_fraction(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise PromotionError(f"{what}: expected a fraction between 0 and 1 (not percent), found {value!r}")


def _compare(model: str, split: str, challenger: Candidate, champion: Candidate) -> tuple[float, int]:
    """The largest per-class fall in recall on `split` (negative when all improved) and its class."""
    if split == "test":
        if not same_test_split(challenger, champion):
            raise PromotionError(
                f"{model}: challenger was scored on data {challenger.data_fingerprint[:12]} ({challenger.test_rows} "
                f"rows), champion {champion.model_path} on {champion.data_fingerprint[:12]} ({champion.test_rows} "
                "rows); expected the same test split: re-evaluate the champion on the challenger's test split first"
            )
        after, before = challenger.per_class_recall, champion.per_class_recall
    else:
        if challenger.new is None or champion.new is None or not same_new_split(challenger, champion):
            raise PromotionError(
                f"{model}: challenger was scored on {_describe_new(challenger)}, champion {champion.model_path} on "
                f"{_describe_new(champion)}; expected the same new set: re-evaluate the champion on it first"
            )
        after, before = challenger.new.per_class_recall, champion.new.per_class_recall
    if len(after) != len(before):
        raise PromotionError(
            f"{model}: challenger {challenger.model_path} has {split} recall for {len(after)} classes, "
            f"champion {champion.model_path} for {len(before)}; expected the same classes"
        )
    drops = [old - new for old, new in zip(before, after, strict=True)]
    digit = max(range(len(drops)), key=drops.__getitem__)
    return drops[digit], digit


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


def _points(fraction: float) -> str:
    return f"{fraction * 100:.2f}"


def _signed_points(fraction: float) -> str:
    return f"{fraction * 100:+.2f}"
