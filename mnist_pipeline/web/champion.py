"""The champion that answers the app's requests, re-opened when the registry changes, without a restart.

Each request stats the registry; only when its identity (inode, mtime, size; every promotion or rollback renames a
new file in) differs is the champion chosen and its engine opened again. A failed choice is not remembered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_pipeline.champion.registry import load_registry
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.serving import Engine, open_engine
from mnist_pipeline.predict.model_choice import ModelChoice, choose_model


class NoChampion(PipelineError):
    """No model can answer yet (no registry, no champion of the model, or its file does not open)."""


@dataclass(frozen=True)
class Serving:
    """The chosen model, its engine, and since when it has been the champion."""

    choice: ModelChoice
    engine: Engine
    since: str | None

    def describe(self) -> dict[str, Any]:
        """What the page shows about the model that answered."""
        return {
            "model": self.choice.model,
            "model_key": self.choice.key,
            "run": self.choice.run_name,
            "champion_since": self.since,
        }


def registry_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of the registry file, None when there is none."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def open_champion(layout: DataLayout, model: str) -> Serving:
    """Choose `model`'s champion in the data dir and open its engine; NoChampion says why that failed."""
    try:
        choice = choose_model(model, layout)
        engine = open_engine(layout, choice.model, choice.key)
        entry = load_registry(layout.registry).champions.get(model)
    except PipelineError as exc:
        raise NoChampion(str(exc)) from exc
    return Serving(choice, engine, entry.promoted_at if entry is not None else None)


class ChampionWatch:
    """Hands out the current champion's Serving; thread-safe (FastAPI runs blocking work in a thread pool)."""

    def __init__(self, layout: DataLayout, model: str) -> None:
        self.layout = layout
        self.model = model
        self.registry = layout.registry
        self.lock = threading.Lock()
        self.identity: tuple[int, int, int] | None = None
        self.serving: Serving | None = None

    def current(self) -> Serving:
        """The champion as the registry names it now; raises NoChampion when there is none to answer."""
        identity = registry_identity(self.registry)
        with self.lock:
            if self.serving is None or identity != self.identity:
                self.serving = None
                self.serving = open_champion(self.layout, self.model)
                self.identity = identity
            return self.serving
