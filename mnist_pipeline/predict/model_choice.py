"""Which saved model answers: the registry's champion of a model name, or that model from a given run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline import defaults
from mnist_pipeline.champion.registry import find_champion, load_registry
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError, PipelineError
from mnist_pipeline.runs.names import check_run_name


@dataclass(frozen=True)
class ModelChoice:
    """The model that answers (found by name and key in the layout's models), its `.keras` file, and where it came
    from."""

    model: str
    key: str
    path: Path
    run_name: str
    source: str  # "champion" or "run"
    layout: DataLayout

    def describe(self) -> str:
        return f"{self.model} {self.source} from run {self.run_name} (key {self.key}, file {self.path})"


def choose_model(
    model: str, layout: DataLayout, run: str | None = None, reports_dir: Path | None = None
) -> ModelChoice:
    """The champion of `model`, or with `run` that run's `model` (read from its metrics.json)."""
    if run is not None:
        return _run_model(model, run, reports_dir or defaults.REPORTS_DIR, layout)
    champion = find_champion(load_registry(layout.registry), model)
    if champion is None:
        raise PipelineError(
            f"{layout.registry}: expected a champion for model {model!r}, found none; "
            f"train one with `mnist-pipeline run --models {model} --data-dir {layout.root}`"
        )
    path = layout.model_file(model, champion.key)
    return ModelChoice(model, champion.key, path, champion.run_name, "champion", layout)


def _run_model(model: str, run: str, reports_dir: Path, layout: DataLayout) -> ModelChoice:
    check_run_name(run)
    metrics_path = reports_dir / "runs" / run / "metrics.json"
    try:
        entry = json.loads(metrics_path.read_text())["models"][model]
        key = str(entry["key"])
        return ModelChoice(model, key, layout.model_file(model, key), run, "run", layout)
    except FileNotFoundError as exc:
        raise DataFormatError(f"{metrics_path}: expected the metrics.json of run {run}, found no such file") from exc
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{metrics_path}: expected the run's metrics.json, found: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise DataFormatError(f"{metrics_path}: expected model {model!r} with a key, found none") from exc
