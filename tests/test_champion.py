"""Champion/challenger: the promotion rule on hand-made numbers, and the registry file on a temporary directory."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from mnist_pipeline.champion.registry import (
    REGISTRY_FORMAT,
    REGISTRY_VERSION,
    find_champion,
    force_promote,
    list_champions,
    load_registry,
    record_decision,
    rollback,
)
from mnist_pipeline.champion.rule import Candidate, PromotionPolicy, decide_forced, decide_promotion
from mnist_pipeline.errors import DataFormatError, PipelineError

POLICY = PromotionPolicy(min_accuracy_gain=0.0005, max_recall_drop=0.01)
FLAT_RECALL = [0.98] * 10


def make_candidate(
    run: str, accuracy: float, recall: list[float] | None = None, fingerprint: str = "a" * 64
) -> Candidate:
    return Candidate(
        key=f"key-{run}",
        model_path=f"data/models/cnn/key-{run}.keras",
        run_name=run,
        data_fingerprint=fingerprint,
        test_rows=10_000,
        test_accuracy=accuracy,
        per_class_recall=recall if recall is not None else FLAT_RECALL,
    )


def with_recall(digit: int, value: float) -> list[float]:
    recall = list(FLAT_RECALL)
    recall[digit] = value
    return recall


# --- the rule ---------------------------------------------------------------------------------------------------


def test_first_run_is_promoted_because_there_is_no_champion() -> None:
    decision = decide_promotion("cnn", make_candidate("r1", 0.9, FLAT_RECALL), None, POLICY)

    assert decision.promoted
    assert decision.reason.startswith("no champion yet")
    assert decision.champion_accuracy is None
    assert decision.accuracy_gain is None


def test_better_by_more_than_the_margin_is_promoted_with_the_numbers() -> None:
    champion = make_candidate("old", 0.9862)
    challenger = make_candidate("new", 0.9871, with_recall(7, 0.976))

    decision = decide_promotion("cnn", challenger, champion, POLICY)

    assert decision.promoted
    assert decision.accuracy_gain == pytest.approx(0.0009)
    assert decision.worst_recall_class == 7
    assert decision.worst_recall_drop == pytest.approx(0.004)
    assert "98.71 %" in decision.reason
    assert "98.62 %" in decision.reason
    assert "0.09 points" in decision.reason
    assert "-0.40 points (digit 7 on test)" in decision.reason


@pytest.mark.parametrize("accuracy", [0.9850, 0.9862])
def test_worse_or_equal_is_kept(accuracy: float) -> None:
    decision = decide_promotion("cnn", make_candidate("new", accuracy), make_candidate("old", 0.9862), POLICY)

    assert not decision.promoted
    assert "does not beat" in decision.reason
    assert decision.accuracy_gain is not None
    assert decision.accuracy_gain <= 0


@pytest.mark.parametrize(("challenger", "promoted"), [(0.9867, False), (0.9868, True)])
def test_gain_must_exceed_the_margin_strictly(challenger: float, promoted: bool) -> None:
    # 0.9867 - 0.9862 is 0.0005 up to float error: exactly the margin, which is not enough.
    decision = decide_promotion("cnn", make_candidate("new", challenger), make_candidate("old", 0.9862), POLICY)

    assert decision.promoted is promoted


def test_better_but_a_digit_regresses_too_much_is_kept() -> None:
    champion = make_candidate("old", 0.9862)
    challenger = make_candidate("new", 0.9900, with_recall(7, 0.965))

    decision = decide_promotion("cnn", challenger, champion, POLICY)

    assert not decision.promoted
    assert decision.worst_recall_class == 7
    assert decision.worst_recall_drop == pytest.approx(0.015)
    assert "digit 7 drops 1.50 points" in decision.reason
    assert "98.00 % -> 96.50 %" in decision.reason
    assert "allowed 1.00" in decision.reason


@pytest.mark.parametrize(("recall", "promoted"), [(0.97, True), (0.9699, False)])
def test_recall_drop_at_the_maximum_is_allowed(recall: float, promoted: bool) -> None:
    decision = decide_promotion(
        "cnn", make_candidate("new", 0.9900, with_recall(3, recall)), make_candidate("old", 0.9862), POLICY
    )

    assert decision.promoted is promoted


def test_mismatched_class_counts_are_an_error() -> None:
    with pytest.raises(PipelineError, match=r"recall for 9 classes, champion .* for 10; expected the same classes"):
        decide_promotion("cnn", make_candidate("new", 0.99, [0.99] * 9), make_candidate("old", 0.98), POLICY)


def test_numbers_from_different_test_splits_are_not_compared() -> None:
    champion = make_candidate("old", 0.98, fingerprint="b" * 64)

    with pytest.raises(PipelineError, match="re-evaluate the champion"):
        decide_promotion("cnn", make_candidate("new", 0.99), champion, POLICY)


def test_accuracy_in_percent_is_rejected() -> None:
    with pytest.raises(PipelineError, match=r"fraction between 0 and 1 \(not percent\), found 98.6"):
        make_candidate("new", 98.6)


@pytest.mark.parametrize("bad", [{"min_accuracy_gain": -0.001}, {"max_recall_drop": 1.5}])
def test_policy_thresholds_must_be_fractions(bad: dict[str, float]) -> None:
    with pytest.raises(PipelineError, match=r"expected \w+ as a fraction"):
        PromotionPolicy(**bad)


def test_forced_decision_promotes_a_worse_model_and_says_so() -> None:
    decision = decide_forced("cnn", make_candidate("new", 0.95), make_candidate("old", 0.98), "revert bad data")

    assert decision.promoted
    assert decision.forced
    assert decision.accuracy_gain == pytest.approx(-0.03)
    assert decision.reason.startswith("forced by hand: revert bad data")
    assert json.loads(json.dumps(asdict(decision)))["forced"] is True


def test_forced_decision_needs_a_reason() -> None:
    with pytest.raises(PipelineError, match="expected a reason"):
        decide_forced("cnn", make_candidate("new", 0.95), None, "  ")


# --- the registry -----------------------------------------------------------------------------------------------


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return tmp_path / "models" / "champions.json"


def promote_in_turn(path: Path, *accuracies: float) -> None:
    """Record one run per accuracy, each judged by the rule against the registry's champion at that time."""
    for number, accuracy in enumerate(accuracies, start=1):
        challenger = make_candidate(f"r{number}", accuracy)
        decision = decide_promotion("cnn", challenger, find_champion(load_registry(path), "cnn"), POLICY)
        record_decision(path, decision, challenger, at=f"2026-01-0{number}T03:00:00Z")


def test_missing_registry_is_empty_and_not_created(registry_path: Path) -> None:
    registry = load_registry(registry_path)

    assert registry.champions == {}
    assert registry.history == []
    assert not registry_path.exists()


def test_recorded_promotion_round_trips_through_the_file(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.98)

    raw = json.loads(registry_path.read_text())
    loaded = load_registry(registry_path)

    assert (raw["format"], raw["version"]) == (REGISTRY_FORMAT, REGISTRY_VERSION)
    assert find_champion(loaded, "cnn") == make_candidate("r1", 0.98)
    assert loaded.champions["cnn"].promoted_at == "2026-01-01T03:00:00Z"
    assert raw["champions"]["cnn"]["candidate"]["data_fingerprint"] == "a" * 64
    assert raw["history"][0]["candidate"]["model_path"] == "data/models/cnn/key-r1.keras"


def test_every_decision_is_appended_and_only_promotions_change_the_champion(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.98, 0.97, 0.99)

    registry = load_registry(registry_path)

    assert [event["kind"] for event in registry.history] == ["promoted", "kept", "promoted"]
    assert [event["run_name"] for event in registry.history] == ["r1", "r2", "r3"]
    assert registry.history[1]["champion_accuracy"] == 0.98
    assert registry.history[2]["previous_champion"]["run_name"] == "r1"
    assert find_champion(registry, "cnn").run_name == "r3"


def test_force_promote_installs_the_candidate_and_records_it(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.98)

    registry = force_promote(registry_path, "cnn", make_candidate("manual", 0.90), "known-good model", at="t-force")

    assert find_champion(load_registry(registry_path), "cnn").run_name == "manual"
    assert registry.champions["cnn"].forced
    assert registry.history[-1]["kind"] == "forced"
    assert registry.history[-1]["decision"]["forced"] is True
    assert "known-good model" in registry.history[-1]["reason"]


def test_rollback_restores_the_previous_champion_then_runs_out(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.98, 0.99)

    registry = rollback(registry_path, "cnn", "r2 misbehaves in production", at="t-rollback")

    assert find_champion(load_registry(registry_path), "cnn").run_name == "r1"
    assert registry.history[-1]["kind"] == "rollback"
    assert registry.history[-1]["previous_champion"]["run_name"] == "r2"
    assert registry.history[-1]["reason"] == "r2 misbehaves in production"
    before = registry_path.read_bytes()
    with pytest.raises(PipelineError, match=r"expected an earlier champion, found only data/models/cnn/key-r1\.keras"):
        rollback(registry_path, "cnn", "again", at="t-again")
    assert registry_path.read_bytes() == before


def test_rollback_walks_back_through_every_earlier_champion(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.97, 0.98, 0.99)

    rollback(registry_path, "cnn", "first", at="t1")
    registry = rollback(registry_path, "cnn", "second", at="t2")

    assert find_champion(registry, "cnn").run_name == "r1"


def test_rollback_of_an_unknown_model_is_an_error(registry_path: Path) -> None:
    with pytest.raises(PipelineError, match="cannot roll back cnn: expected an earlier champion, found no champion"):
        rollback(registry_path, "cnn", "oops", at="t")


def test_list_champions_gives_one_row_per_model(registry_path: Path) -> None:
    promote_in_turn(registry_path, 0.98)
    force_promote(registry_path, "ann_no_hidden", make_candidate("r9", 0.92), "seed", at="t9")

    rows = list_champions(load_registry(registry_path))

    assert [row["model"] for row in rows] == ["ann_no_hidden", "cnn"]
    assert rows[1] == {
        "model": "cnn",
        "accuracy": 0.98,
        "run": "r1",
        "promoted_at": "2026-01-01T03:00:00Z",
        "forced": False,
        "model_path": "data/models/cnn/key-r1.keras",
    }
    assert rows[0]["forced"] is True


def valid_registry_text(path: Path) -> str:
    promote_in_turn(path, 0.98)
    return path.read_text()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda text: text[: len(text) // 2], "unreadable content"),
        (lambda text: "[]", "expected a champion registry"),
        (lambda text: text.replace(REGISTRY_FORMAT, "something-else"), "found 'something-else'"),
        (lambda text: text.replace(f'"version": {REGISTRY_VERSION}', '"version": 99'), "found 99"),
        (lambda text: text.replace('"run_name": "r1"', '"run_name": "edited"', 1), "was the file edited by hand"),
        (lambda text: text.replace('"test_accuracy": 0.98', '"test_accuracy": 98', 1), "not percent"),
    ],
)
def test_corrupt_registry_is_a_clear_error_and_left_untouched(registry_path: Path, corrupt, message: str) -> None:
    registry_path.write_text(corrupt(valid_registry_text(registry_path)))
    before = registry_path.read_bytes()

    with pytest.raises(DataFormatError, match=message) as caught:
        promote_in_turn(registry_path, 0.99)

    assert str(registry_path) in str(caught.value)
    assert registry_path.read_bytes() == before


def test_failed_write_leaves_the_old_registry_intact(registry_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    promote_in_turn(registry_path, 0.98)
    before = registry_path.read_bytes()

    def write_half_then_fail(self: Path, data: bytes) -> int:
        with self.open("wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        promote_in_turn(registry_path, 0.99)
    monkeypatch.undo()

    assert registry_path.read_bytes() == before
    assert find_champion(load_registry(registry_path), "cnn").run_name == "r1"
    names = sorted(path.name for path in registry_path.parent.iterdir())
    assert names == ["champions.json", "champions.json.bak"]  # no temp file left behind
