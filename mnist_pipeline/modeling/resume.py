"""Resume training after a kill (docs/training.md): the full training state at each epoch end, one file per
training key: weights, the optimizer's variables (which also drive the learning-rate schedule), the history and the
early-stopping state. The batch order needs no saving: every epoch's order is drawn up front from the seeded
generator, so a resumed run rebuilds the same stream, skips the finished epochs and ends with equal weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_pipeline.files.atomic import atomic_path

log = logging.getLogger(__name__)
STATE_VERSION = 1
EARLY_STOPPING_FIELDS = ("wait", "stopped_epoch", "best", "best_epoch")


@dataclass
class TrainingState:
    """What training had reached after `epoch` finished epochs."""

    epoch: int
    stopped: bool
    history: dict[str, list[float]]
    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    early_stopping: dict[str, Any] = field(default_factory=dict)
    best_weights: list[np.ndarray] | None = None


def save_state(path: Path, state: TrainingState) -> None:
    """One .npz, written atomically: a kill during the write leaves the previous epoch's state."""
    meta = {
        "version": STATE_VERSION,
        "epoch": state.epoch,
        "stopped": state.stopped,
        "history": state.history,
        "early_stopping": state.early_stopping,
        "n_weights": len(state.weights),
        "n_optimizer": len(state.optimizer),
        "n_best": None if state.best_weights is None else len(state.best_weights),
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays |= {f"w{i}": value for i, value in enumerate(state.weights)}
    arrays |= {f"o{i}": value for i, value in enumerate(state.optimizer)}
    arrays |= {f"b{i}": value for i, value in enumerate(state.best_weights or [])}
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, **arrays)


def load_state(path: Path) -> TrainingState | None:
    """The saved state, or None when there is none or it is unusable (then training starts over, logged)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            if meta["version"] != STATE_VERSION:
                raise ValueError(f"state version {meta['version']}")
            n_best = meta["n_best"]
            return TrainingState(
                epoch=int(meta["epoch"]),
                stopped=bool(meta["stopped"]),
                history=meta["history"],
                weights=[archive[f"w{i}"] for i in range(meta["n_weights"])],
                optimizer=[archive[f"o{i}"] for i in range(meta["n_optimizer"])],
                early_stopping=meta["early_stopping"],
                best_weights=None if n_best is None else [archive[f"b{i}"] for i in range(n_best)],
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unusable training state (%s); training starts over", path, exc)
        return None


class ResumeTraining(keras.callbacks.Callback):
    """Restores a saved state when training begins and saves the state at each epoch end.

    Place it after EarlyStopping in the callback list: EarlyStopping resets itself in on_train_begin, and its
    decision for an epoch must be made before that epoch's state is saved.
    """

    def __init__(self, path: Path, name: str, early_stopping: keras.callbacks.EarlyStopping | None) -> None:
        super().__init__()
        self.path, self.name, self.early_stopping = path, name, early_stopping
        self.resumed = load_state(path)
        self.history: dict[str, list[float]] = dict(self.resumed.history) if self.resumed else {}

    @property
    def initial_epoch(self) -> int:
        """Epochs already finished (0 when starting fresh)."""
        return self.resumed.epoch if self.resumed else 0

    def initial_epoch_for(self, epochs: int) -> int:
        """Where fit starts: after the saved epoch, or at the end when early stopping had already ended it."""
        if self.resumed and self.resumed.stopped:
            return epochs
        return self.initial_epoch

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        state = self.resumed
        if state is None:
            return
        model = self.model
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if len(state.weights) != len(model.weights) or len(state.optimizer) != len(model.optimizer.variables):
            raise RuntimeError(f"{self.path}: saved state does not fit model {self.name}")
        model.set_weights(state.weights)
        for variable, value in zip(model.optimizer.variables, state.optimizer, strict=True):
            variable.assign(value)
        if self.early_stopping is not None:
            for name, value in state.early_stopping.items():
                setattr(self.early_stopping, name, value)
            self.early_stopping.best_weights = state.best_weights
        log.info("resumed %s from epoch %d (%s)", self.name, state.epoch, self.path)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        stopping = self.early_stopping
        save_state(
            self.path,
            TrainingState(
                epoch=epoch + 1,
                stopped=bool(self.model.stop_training),
                history=self.history,
                weights=self.model.get_weights(),
                optimizer=[np.asarray(variable) for variable in self.model.optimizer.variables],
                early_stopping={} if stopping is None else _early_stopping_fields(stopping),
                best_weights=None if stopping is None else stopping.best_weights,
            ),
        )


def _early_stopping_fields(stopping: keras.callbacks.EarlyStopping) -> dict[str, Any]:
    values = {name: getattr(stopping, name) for name in EARLY_STOPPING_FIELDS}
    return {
        name: None if value is None else float(value) if name == "best" else int(value)
        for name, value in values.items()
    }


def remove_state(path: Path) -> None:
    """Called once the trained model is saved: the state has served its purpose."""
    path.unlink(missing_ok=True)
