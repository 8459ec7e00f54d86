"""How a run is named, labelled and given its report folder; names that could leave reports/runs/ are refused."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from mnist_pipeline.errors import PipelineError

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class RunNameError(PipelineError):
    """A run name that is not a safe directory name: it would put the run's report outside reports/runs/."""


def is_safe_run_name(name: Any) -> bool:
    return isinstance(name, str) and RUN_NAME.fullmatch(name) is not None


def check_run_name(name: Any) -> str:
    """Letters, digits, `.`, `_`, `-`, no leading dot or dash: no `..`, no `/`, no hidden or option-like names."""
    if not is_safe_run_name(name):
        raise RunNameError(
            f"run name {name!r}: expected letters, digits, '.', '_' or '-' (not starting with '.' or '-', "
            "at most 200 characters), so the report stays inside reports/runs/"
        )
    return name


def compose_run_name(prefix: str, run_id: str, at: datetime, id_digits: int) -> str:
    """Readable, sortable, unique: `<prefix>-YYYY-MM-DD-HHMMSS-<first id_digits of the flow run id>` (the id's
    digits keep apart runs started in the same second)."""
    return check_run_name(f"{prefix}-{at:%Y-%m-%d-%H%M%S}-{run_id[:id_digits]}")


def claim_run_dir(reports_dir: Path, name: str) -> Path:
    """Create this run's report folder; it must not exist yet (mkdir is atomic, so exactly one run gets it)."""
    run_dir = reports_dir / "runs" / check_run_name(name)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.mkdir()
    except FileExistsError as exc:
        raise PipelineError(
            f"{run_dir}: expected a new run folder, found one already (two runs with one name?)"
        ) from exc
    return run_dir


def run_tags(profile: str, source: str, models: tuple[str, ...]) -> set[str]:
    """Profile, source kind and model tags, so runs can be filtered in the Prefect UI's run history."""
    return {f"profile:{profile}", f"source:{source.partition(':')[0]}"} | {f"model:{name}" for name in models}
