"""What a person does to the champions by hand (`mnist-pipeline champion`): force a run's model, roll one back.

Both check that the model file they install exists, so a manual change never names a model predict cannot load.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_pipeline.champion.registry import force_promote, rollback
from mnist_pipeline.champion.rule import Candidate, candidate_from_metrics
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import hold_lock
from mnist_pipeline.runs.names import check_run_name


def force_promote_run(layout: DataLayout, reports_dir: Path, model: str, run: str, reason: str, at: str) -> Candidate:
    """Make `model` from run `run` (its metrics.json under reports_dir/runs/) the champion, whatever the rule says."""
    metrics_path = reports_dir / "runs" / check_run_name(run) / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{metrics_path}: expected the run's metrics.json, found: {exc}") from exc
    try:
        candidate = candidate_from_metrics(metrics, model)
    except (KeyError, TypeError) as exc:
        raise DataFormatError(f"{metrics_path}: expected a metrics.json of this pipeline, found no {exc}") from exc
    model_file = layout.model_file(model, candidate.key)
    # The gc lock held shared from the check to the promotion: a collection in between would leave a champion
    # without its file.
    with hold_lock(layout.gc_lock, shared=True):
        if not model_file.is_file():
            raise DataFormatError(f"{model_file}: expected the run's saved model, found no such file")
        force_promote(layout.registry, model, candidate, reason, at)
    return candidate


def roll_back(layout: DataLayout, model: str, reason: str, at: str) -> tuple[Candidate, Path]:
    """Restore `model`'s previous champion; returns it and its model file (which may have been deleted since)."""
    registry = rollback(layout.registry, model, reason, at)
    restored = registry.champions[model].candidate
    return restored, layout.model_file(model, restored.key)
