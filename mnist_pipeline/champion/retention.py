"""Bounded `models/`: keep every model the champion registry names, plus the most recently used few per name.

Every model that was ever a champion stays, so `champion --rollback` always finds its file. The rest are
training-cache entries: deleting one only means the next run with that exact configuration trains it again, so
its Prefect records and recorded evaluations go with it (`runs.cache_entries`). A run that reuses a model marks
it used (`mark_model_used`), so a model in use is among the newest. Resume states of trainings nobody resumed
for a week go too: a killed run that is never rerun would otherwise keep its weights and optimizer state forever.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mnist_pipeline.champion.registry import INSTALLING_KINDS, load_registry
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.runs.cache_entries import remove_cache_entries

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


def mark_model_used(layout: DataLayout, model: str, key: str) -> bool:
    """Make a saved model the newest for pruning, as a run that reuses it needs it; returns whether it exists."""
    try:
        os.utime(layout.model_file(model, key))
    except FileNotFoundError:
        return False
    return True


def prune_models(layout: DataLayout) -> list[Path]:
    """Delete old non-champion models with their cache entries, and stale resume states; returns what went.

    Call under the registry lock so the champion set cannot change meanwhile.
    """
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
            if old.resolve() in champions:
                continue
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".json").unlink(missing_ok=True)  # a sidecar, as versions before 0.2 wrote
            removed.append(old)
            log.info("removed old model %s (keeping champions and the newest %d per name)", old, keep)
            removed += remove_cache_entries(layout, folder.name, old.stem)
        removed += _remove_stale_resume_states(folder)
    return removed


def _remove_stale_resume_states(folder: Path) -> list[Path]:
    """Resume states not written for RESUME_UNUSED_DAYS (a training writes its state at every epoch end)."""
    cutoff = time.time() - RESUME_UNUSED_DAYS * 86400
    removed = []
    for state in folder.glob("*.resume.npz"):
        try:
            if state.stat().st_mtime < cutoff:
                state.unlink()
                removed.append(state)
                log.info("removed resume state %s (not resumed for %g days)", state, RESUME_UNUSED_DAYS)
        except FileNotFoundError:  # resumed and finished meanwhile
            continue
    return removed
