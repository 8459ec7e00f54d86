"""Where a run came from: library versions and the git commit, recorded in metrics.json."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("tensorflow", "keras", "prefect", "great_expectations", "pandas", "pyarrow", "numpy", "mnist-pipeline")


def collect_versions() -> dict[str, str]:
    """Installed versions read from package metadata (no heavy imports)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
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
