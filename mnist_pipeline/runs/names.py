"""Run names become directory names and links: only names that cannot leave reports/runs/ are accepted."""

from __future__ import annotations

import re
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
