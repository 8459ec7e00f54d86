"""The champion registry (`models/champions.json`, its lock and `.bak`: docs/operations.md): each model's champion.

The append-only history is the source of truth: replaying its promotions (push) and rollbacks (pop) gives the
champions, so a rollback always finds the one before; the `champions` section is that replay, checked on load.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mnist_pipeline.champion.rule import Candidate, Decision, PromotionError, candidate_from_record, decide_forced
from mnist_pipeline.errors import DataFormatError, PipelineError
from mnist_pipeline.files.atomic import copy_file_atomic, hold_lock, write_json_atomic

REGISTRY_FORMAT = "mnist-pipeline/champions"
REGISTRY_VERSION = 1
EVENT_KINDS = ("promoted", "kept", "forced", "rollback")
INSTALLING_KINDS = ("promoted", "forced")


@dataclass(frozen=True)
class ChampionEntry:
    """The current champion of one model name: the model file, how it scored, and when and why it won."""

    model: str
    candidate: Candidate
    promoted_at: str
    forced: bool
    reason: str


@dataclass(frozen=True)
class Registry:
    champions: dict[str, ChampionEntry]
    history: list[dict[str, Any]]


def load_registry(path: Path) -> Registry:
    """Read the registry; a missing file is an empty one, anything unreadable is an error (never overwritten). So is
    a missing file beside its backup: an empty successor would lose the history and let retention delete the
    champions' files. The backup is not restored automatically: it is one update behind."""
    backup = backup_path(path)
    if not path.exists():
        if backup.exists():
            raise DataFormatError(
                f"{path}: expected the champion registry, found it missing while its backup {backup.name} is there; "
                f"to restore it, copy {backup.name} over it (`cp {backup} {path}`: the registry as it was before its "
                f"last update); to start with no champions, delete {backup.name} too"
            )
        return Registry(champions={}, history=[])
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(
            f"{path}: expected a JSON champion registry, found unreadable content ({err}; empty or truncated?); "
            f"to recover, copy {backup.name} over it (`cp {backup} {path}`: the registry as it was before its last "
            "update)"
        ) from err
    return _parse_registry(path, raw)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def find_champion(registry: Registry, model: str) -> Candidate | None:
    """The champion to compare a challenger against, or None on the first run for that model."""
    entry = registry.champions.get(model)
    return entry.candidate if entry is not None else None


def record_decision(path: Path, decision: Decision, challenger: Candidate, at: str) -> Registry:
    """Append the decision to the history; a promotion makes `challenger` the champion of `decision.model`. Call
    under `registry_lock(path)`, held since the champion was read for the decision."""
    registry = load_registry(path)
    kind = "forced" if decision.forced else "promoted" if decision.promoted else "kept"
    previous = find_champion(registry, decision.model)
    event = _event(kind, decision.model, at, decision.reason, challenger, previous, decision)
    event |= {"accuracy": decision.challenger_accuracy, "champion_accuracy": decision.champion_accuracy}
    registry.history.append(event)
    if decision.promoted:
        registry.champions[decision.model] = ChampionEntry(
            decision.model, challenger, at, decision.forced, decision.reason
        )
    _write(path, registry)
    return registry


def force_promote(path: Path, model: str, candidate: Candidate, reason: str, at: str) -> Registry:
    """Make `candidate` the champion by hand, bypassing the rule; recorded as a `forced` event."""
    with registry_lock(path):
        decision = decide_forced(model, candidate, find_champion(load_registry(path), model), reason)
        return record_decision(path, decision, candidate, at)


def rollback(path: Path, model: str, reason: str, at: str) -> Registry:
    """Restore the champion that preceded the current one; an error when there is none to go back to."""
    with registry_lock(path):
        registry = load_registry(path)
        lineage = _replay(path, registry.history).get(model, [])
        if len(lineage) < 2:
            found = f"only {lineage[0].candidate.model_path}" if lineage else "no champion at all"
            raise PromotionError(f"{path}: cannot roll back {model}: expected an earlier champion, found {found}")
        current, restored = lineage[-1].candidate, lineage[-2]
        registry.history.append(_event("rollback", model, at, reason, restored.candidate, current, None))
        registry.champions[model] = restored
        _write(path, registry)
    return registry


def _event(
    kind: str, model: str, at: str, reason: str, chosen: Candidate, prior: Candidate | None, decision: Decision | None
) -> dict[str, Any]:
    """One history event, its keys in the order the file has always had."""
    return {
        "kind": kind,
        "model": model,
        "at": at,
        "reason": reason,
        "run_name": chosen.run_name,
        "accuracy": chosen.test_accuracy,
        "champion_accuracy": prior.test_accuracy if prior is not None else None,
        "candidate": asdict(chosen),
        "previous_champion": asdict(prior) if prior is not None else None,
        "decision": asdict(decision) if decision is not None else None,
    }


def list_champions(registry: Registry) -> list[dict[str, Any]]:
    """One row per model name for the CLI table, sorted by name; accuracy is a fraction."""
    return [
        {
            "model": model,
            "accuracy": entry.candidate.test_accuracy,
            "run": entry.candidate.run_name,
            "promoted_at": entry.promoted_at,
            "forced": entry.forced,
            "model_path": entry.candidate.model_path,
        }
        for model, entry in sorted(registry.champions.items())
    ]


def registry_lock(path: Path) -> AbstractContextManager[None]:
    """Serialise read-decide-write of the registry across processes (an advisory lock on a sibling file)."""
    return hold_lock(path.parent / f".{path.name}.lock")


def _write(path: Path, registry: Registry) -> None:
    content = {
        "format": REGISTRY_FORMAT,
        "version": REGISTRY_VERSION,
        "champions": {model: asdict(entry) for model, entry in sorted(registry.champions.items())},
        "history": registry.history,
    }
    # The backup is the state before this update: the file as `load_registry` just read and checked it, or an empty
    # registry on the first write. A copy of the new content would turn a bad update into a bad backup too.
    if path.exists():
        copy_file_atomic(path, backup_path(path))
    else:
        write_json_atomic(backup_path(path), {**content, "champions": {}, "history": []})
    write_json_atomic(path, content)


def _parse_registry(path: Path, raw: Any) -> Registry:
    if not isinstance(raw, dict) or raw.get("format") != REGISTRY_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise DataFormatError(f"{path}: expected a champion registry (format {REGISTRY_FORMAT!r}), found {found!r}")
    if raw.get("version") != REGISTRY_VERSION:
        raise DataFormatError(
            f"{path}: expected champion registry version {REGISTRY_VERSION}, found {raw.get('version')!r} "
            "(written by another mnist-pipeline release?)"
        )
    history, champions = raw.get("history"), raw.get("champions")
    if not isinstance(history, list) or not isinstance(champions, dict):
        raise DataFormatError(f"{path}: expected 'champions' (object) and 'history' (list), found them missing")
    replayed = {model: lineage[-1] for model, lineage in _replay(path, history).items() if lineage}
    stored = {
        model: _parse_entry(path, f"champion {model!r}", model, entry, "promoted_at")
        for model, entry in champions.items()
    }
    if stored != replayed:
        raise DataFormatError(
            f"{path}: expected 'champions' to match what its history records "
            f"({_describe(replayed)}), found {_describe(stored)}; was the file edited by hand?"
        )
    return Registry(champions=replayed, history=history)


def _replay(path: Path, history: list[Any]) -> dict[str, list[ChampionEntry]]:
    """Each model's champions, oldest first: promotions push, rollbacks pop."""
    lineages: dict[str, list[ChampionEntry]] = {}
    for number, event in enumerate(history):
        if (
            not isinstance(event, dict)
            or event.get("kind") not in EVENT_KINDS
            or not isinstance(event.get("model"), str)
        ):
            raise DataFormatError(
                f"{path}: history event {number}: expected an object with a kind in {EVENT_KINDS} and a model, "
                f"found {str(event)[:120]!r}"
            )
        lineage = lineages.setdefault(event["model"], [])
        if event["kind"] in INSTALLING_KINDS:
            lineage.append(_parse_entry(path, f"history event {number}", event["model"], event, "at"))
        elif event["kind"] == "rollback":
            if len(lineage) < 2:
                raise DataFormatError(f"{path}: history event {number} rolls back {event['model']} past its first")
            lineage.pop()
    return lineages


def _parse_entry(path: Path, where: str, model: str, record: Any, at_key: str) -> ChampionEntry:
    """A champion as an installing history event (at `at`) or the `champions` section (at `promoted_at`) has it."""
    if not isinstance(record, dict) or not all(isinstance(record.get(key), str) for key in (at_key, "reason")):
        raise DataFormatError(
            f"{path}: {where}: expected an object with text in {at_key!r} and 'reason', found {str(record)[:200]!r}"
        )
    try:
        candidate = candidate_from_record(record["candidate"])
    except (KeyError, TypeError, PipelineError) as err:
        raise DataFormatError(
            f"{path}: {where}: expected a model record ({err}), found {str(record.get('candidate'))[:200]!r}"
        ) from err
    forced = record.get("kind") == "forced" or record.get("forced") is True
    return ChampionEntry(model, candidate, record[at_key], forced, record["reason"])


def _describe(champions: dict[str, ChampionEntry]) -> str:
    listed = ", ".join(f"{model}={entry.candidate.run_name}" for model, entry in sorted(champions.items()))
    return listed or "no champions"
