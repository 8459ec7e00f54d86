"""The metrics.json document (models, data, stages, run, validation; docs/report.md lists every field), assembled
from what each stage returned, with where the run came from (library versions, git commit); the flow adds
`champion` once promotion has decided."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mnist_pipeline.config import RunConfig
from mnist_pipeline.modeling.jobs import ModelScores, TrainedModel
from mnist_pipeline.modeling.registry import seed_study_accuracies


class StageClock:
    """Seconds per stage of a flow, each lap timed from the end of the one before: one timer for the whole flow.
    Prefect's UI times each task run; a stage here may span several tasks and the waits between them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def restart(self) -> None:
        """Start the next lap now: what happened since the last one belongs to no stage."""
        self._last = time.perf_counter()

    def lap(self, stage: str) -> float:
        """Record the seconds since the last lap as `stage`; returns them, rounded to the millisecond."""
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 3)
        self._last = now
        return self.seconds[stage]


@dataclass(frozen=True)
class ModelOutcome:
    """One model of a run: its training, its scores, and the run's own copy of its test predictions."""

    trained: TrainedModel
    scores: ModelScores
    predictions_path: str

    def to_metrics(self, profile: str) -> dict[str, Any]:
        """The model's entry in metrics.json: the `test` figures flat (as before sets), `eval.<set>` for each set,
        and how it was trained."""
        test, trained = self.scores.test, self.trained
        return {
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "test_rows": test.rows,
            "confusion_matrix": test.confusion_matrix,
            "per_class": test.per_class,
            "calibration": test.calibration,
            "selective": test.selective,
            "predictions_file": test.predictions_file,
            "evaluation_reused": self.scores.reused,
            "eval": {
                split: {**scored.summary(), "predictions_file": scored.predictions_file, "reused": scored.reused}
                for split, scored in self.scores.by_set().items()
            },
            "predictions_path": self.predictions_path,
            "epochs": trained.train_config["epochs"],
            "epochs_run": trained.epochs_run,
            "best_epoch": trained.best_epoch,
            "batch_size": trained.train_config["batch_size"],
            "train_seconds": trained.train_seconds,
            "started_at": trained.started_at,
            "finished_at": trained.finished_at,
            "cached": trained.reused,
            "resumed_from_epoch": trained.resumed_from_epoch,
            # The key of the champion it was fine-tuned from (--warm-start), or None: trained anew.
            "warm_start": trained.warm_start,
            "params": trained.params,
            "profile": profile,
            "train_config": trained.train_config,
            "train_rows": trained.train_rows,
            "increment_rows": trained.increment_rows,
            "history": trained.history,
            "epoch_seconds": trained.epoch_seconds,
            "model_path": trained.model_path,
            "key": trained.key,
        }


def assemble_metrics(
    config: RunConfig,
    run: dict[str, Any],
    manifest: dict[str, Any],
    validation: dict[str, Any],
    outcomes: Mapping[str, ModelOutcome],
    stages: Mapping[str, float],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """`run` names the flow run: name, flow_run_id, flow_run_url, started_at."""
    new_split = find_new_split(manifest)
    return {
        "run": {
            **run,
            # Only a link a browser can open: Prefect's ephemeral mode serves no UI, so its runs record none.
            "flow_run_url": run["flow_run_url"] if str(run["flow_run_url"]).startswith("http") else None,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "profile": config.profile,
            "seed": config.seed,
            "task_runner": config.task_runner,
            **provenance,
            "parameters": config.to_parameters(),
        },
        "data": {
            "fingerprint": manifest["fingerprint"],
            "train_rows": manifest["splits"]["train"]["rows"],
            "test_rows": manifest["splits"]["test"]["rows"],
            "test_sha256": manifest["splits"]["test"]["sha256"],
            "source": manifest["source"],
            "origin": manifest["origin"],
            "increments": list(manifest.get("increments") or []),
            "new_rows": new_split["rows"] if new_split else 0,
            "increment_rows": dict(manifest.get("increment_rows") or {"train": 0, "test": 0}),
            "new_sha256": new_split["sha256"] if new_split else None,
        },
        "validation": validation,
        "stages": {stage: {"seconds": round(seconds, 3)} for stage, seconds in stages.items()},
        "models": {name: outcome.to_metrics(config.profile) for name, outcome in outcomes.items()},
    }


def find_new_split(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's `new` split (the accepted increments' test parts), or None when the version has none or it
    holds no rows: then there is no `new` set to score on."""
    split = manifest.get("splits", {}).get("new")
    return split if split and split.get("rows") else None


def seed_study_for(metrics: dict[str, Any]) -> Mapping[str, float | None]:
    """The seed study's accuracies this run may be set beside: none unless it was scored on MNIST's whole test split
    (the study's figures are on those 10 000 images; a --test-limit run scored fewer, another dataset others)."""
    if (metrics.get("run", {}).get("parameters") or {}).get("test_limit"):
        return MappingProxyType({})
    return seed_study_accuracies(metrics.get("data", {}).get("test_sha256"))


PROVENANCE_PACKAGES = (
    "tensorflow",
    "keras",
    "prefect",
    "great_expectations",
    "pandas",
    "pyarrow",
    "numpy",
    "mnist-pipeline",
)


def collect_versions() -> dict[str, str]:
    """Installed versions read from package metadata (no heavy imports)."""
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def find_git_commit(directory: Path | None = None) -> str | None:
    """The checkout's commit (with '+dirty' when it has local changes), or None outside git."""
    cwd = directory or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")
