"""Bounded `models/`: keep every model the champion registry names, every model a running flow uses, plus the most
recently used few per name.

Every model that was ever a champion stays, so `champion --rollback` always finds its file. The rest are
training-cache entries: deleting one only means the next run with that exact configuration trains it again, and
its Prefect records and recorded evaluations go with it (`runs.cache_entries`). A running flow pins the models it
plans to use (a shared flock, dropped by the kernel when the flow's process dies), so a concurrent run's pruning
leaves them alone, and marks a model it reuses as used, so it counts among the newest. Resume states of
trainings nobody resumed for a week go too: a killed run that is never rerun would otherwise keep them forever.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from mnist_pipeline.champion.registry import INSTALLING_KINDS, load_registry, registry_lock
from mnist_pipeline.data.layout import MODEL_PIN_PREFIX, RESUME_SUFFIX, DataLayout
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.locks import hold_lock, is_locked
from mnist_pipeline.runs.cache_entries import remove_orphaned_entries

log = logging.getLogger(__name__)

KEEP_ENV = "MNIST_PIPELINE_KEEP_MODELS"
DEFAULT_KEEP = 5
RESUME_UNUSED_DAYS = 7.0


def models_to_keep_per_name() -> int:
    """How many of the newest models per name survive pruning: $MNIST_PIPELINE_KEEP_MODELS, default 5."""
    raw = os.environ.get(KEEP_ENV, str(DEFAULT_KEEP))
    if not raw.strip().isdigit() or int(raw) < 1:
        raise PipelineError(f"{KEEP_ENV}: expected a positive integer, found {raw!r}")
    return int(raw)


@contextmanager
def pin_models(layout: DataLayout, models: Iterable[tuple[str, str]]) -> Iterator[None]:
    """Keep pruning away from these (name, key) models while the block runs, whether they exist yet or not.

    Taken under the registry lock, which pruning holds: a model is either pruned before the pin (and the run
    finds it missing and retrains it) or pinned before pruning looks at it, never lost in between.
    """
    with ExitStack() as pins:
        with registry_lock(layout.registry):
            for model, key in models:
                pins.enter_context(hold_lock(layout.model_pin_file(model, key), shared=True))
        yield


def mark_model_used(layout: DataLayout, model: str, key: str) -> bool:
    """Make a saved model the newest for pruning, as a run that reuses it needs it; returns whether it exists.

    Only recency is lost where the file cannot be touched (another user's file, a read-only data dir)."""
    path = layout.model_file(model, key)
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.debug("%s not marked used: %s", path, exc)
    return path.is_file()


def prune_models(layout: DataLayout) -> list[Path]:
    """Delete old non-champion, unpinned models, cache entries of models that are gone, stale resume states and
    unused pin files; returns what went. Call under the registry lock (the champion set and the pins hold still)."""
    keep = models_to_keep_per_name()
    history = load_registry(layout.registry).history
    # Found by name and key, not by the recorded path, which goes stale when the data dir moves.
    champions = {
        layout.model_file(event["model"], event["candidate"]["key"]).resolve()
        for event in history
        if event["kind"] in INSTALLING_KINDS
    }
    removed = []
    for folder in sorted(path for path in layout.models.iterdir() if path.is_dir()) if layout.models.is_dir() else []:
        models = sorted(folder.glob("*.keras"), key=lambda path: path.stat().st_mtime, reverse=True)
        for old in models[keep:]:
            if old.resolve() in champions or is_locked(layout.model_pin_file(folder.name, old.stem)):
                continue
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".json").unlink(missing_ok=True)  # a sidecar, as versions before 0.2 wrote
            removed.append(old)
            log.info("removed old model %s (keeping champions, pinned ones and the newest %d per name)", old, keep)
        removed += _remove_stale_resume_states(layout, folder)
    removed += remove_orphaned_entries(layout, lambda model, key: _is_live(layout, model, key))
    removed += _remove_unused_pins(layout)
    return removed


def _is_live(layout: DataLayout, model: str, key: str) -> bool:
    return layout.model_file(model, key).is_file() or is_locked(layout.model_pin_file(model, key))


def _remove_stale_resume_states(layout: DataLayout, folder: Path) -> list[Path]:
    """Resume states not written for RESUME_UNUSED_DAYS (a training writes its state at every epoch end), unless a
    running flow pinned their model: it is about to resume from that state."""
    cutoff = time.time() - RESUME_UNUSED_DAYS * 86400
    removed = []
    for state in folder.glob(f"*{RESUME_SUFFIX}"):
        if is_locked(layout.model_pin_file(folder.name, state.name.removesuffix(RESUME_SUFFIX))):
            continue
        try:
            if state.stat().st_mtime < cutoff:
                state.unlink()
                removed.append(state)
                log.info("removed resume state %s (not resumed for %g days)", state, RESUME_UNUSED_DAYS)
        except FileNotFoundError:  # resumed and finished meanwhile
            continue
    return removed


def _remove_unused_pins(layout: DataLayout) -> list[Path]:
    """Pin files of models that are gone and that no run holds (safe under the registry lock: pins are taken
    under it too, so none can be taken on a file between this check and its unlink)."""
    removed = []
    for pin in layout.locks.glob(f"{MODEL_PIN_PREFIX}*"):
        model, _, key = pin.name.removeprefix(MODEL_PIN_PREFIX).rpartition("-")
        if not layout.model_file(model, key).is_file() and not is_locked(pin):
            pin.unlink(missing_ok=True)
            removed.append(pin)
    return removed
