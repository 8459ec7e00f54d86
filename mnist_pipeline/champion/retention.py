"""Bounded `models/`: keep every model the champion registry names, plus the newest few per model name.

Every model that was ever a champion stays, so `champion --rollback` always finds its file. The rest are
training-cache entries: deleting one only means the next run with that exact configuration trains it again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mnist_pipeline.champion.registry import INSTALLING_KINDS, load_registry
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError

log = logging.getLogger(__name__)

KEEP_ENV = "MNIST_PIPELINE_KEEP_MODELS"
DEFAULT_KEEP = 5


def models_to_keep_per_name() -> int:
    """How many of the newest models per name survive pruning: $MNIST_PIPELINE_KEEP_MODELS, default 5."""
    raw = os.environ.get(KEEP_ENV, str(DEFAULT_KEEP))
    if not raw.strip().isdigit() or int(raw) < 1:
        raise PipelineError(f"{KEEP_ENV}: expected a positive integer, found {raw!r}")
    return int(raw)


def prune_models(layout: DataLayout) -> list[Path]:
    """Delete old non-champion models; call under the registry lock so the champion set cannot change meanwhile."""
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
    return removed
