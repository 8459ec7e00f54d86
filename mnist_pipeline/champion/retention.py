"""Garbage collection of the data dir (`mnist-pipeline gc`, weekly `mnist-maintenance/weekly-gc`), holding
`DataLayout.gc_lock` exclusively; what it keeps and why is in docs/operations.md.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from mnist_pipeline.champion.registry import INSTALLING_KINDS, load_registry
from mnist_pipeline.data.ingest import forget_versions
from mnist_pipeline.data.layout import DataLayout, version_name
from mnist_pipeline.data.versions import FAILED_SUFFIX, MARKER, SET_ASIDE_PREFIX, current_version
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files.atomic import hold_lock

log = logging.getLogger(__name__)

DEFAULT_GRACE_DAYS = 7.0
# What earlier releases left that nothing reads any more: Prefect's result records and the pin files of runs.
LEGACY = ("prefect-results/*", ".locks/pin-*", ".locks/model-*")


def collect_garbage(layout: DataLayout, grace_days: float = DEFAULT_GRACE_DAYS, dry_run: bool = False) -> list[Path]:
    """Delete what no champion needs and nobody used for `grace_days`; returns what went (would go, on a dry run)."""
    if not grace_days >= 0:
        raise PipelineError(f"--grace-days: expected a number of days of 0 or more, found {grace_days}")
    if not layout.root.is_dir():  # nothing ran here yet (the weekly collection may come first): nothing to do
        return []
    cutoff = time.time() - grace_days * 86400
    with hold_lock(layout.gc_lock):
        history = load_registry(layout.registry).history
        installed = [event for event in history if event["kind"] in INSTALLING_KINDS]
        champions = {(event["model"], event["candidate"]["key"]) for event in installed}
        kept_versions = {version_name(event["candidate"]["data_fingerprint"]) for event in installed}
        kept_versions.add(current_version(layout) or "")
        removed = []
        for group in _list_items(layout, champions, kept_versions):
            removed += _remove_if_unused(group, cutoff, dry_run)
        if not dry_run:
            gone = {path.name.removesuffix(FAILED_SUFFIX) for path in removed if path.parent == layout.versions}
            removed += forget_versions(layout, {name for name in gone if not (layout.versions / name).exists()})
    return removed


def _list_items(layout: DataLayout, champions: set[tuple[str, str]], kept_versions: set[str]) -> Iterator[list[Path]]:
    """Each deletable item as the files that make it up (the summary first: without it nothing is reused)."""
    for name, folder in _subfolders(layout.models):
        for key, files in _group_by_key(folder).items():
            if (name, key) not in champions:
                yield files
    for _, folder in _subfolders(layout.evaluations):
        yield from _group_by_key(folder).values()
    yield from ([path] for path in sorted(layout.validations.glob("*.json")))
    for _, folder in _subfolders(layout.versions):
        # A version set aside by a killed swap may be its only copy: the next ingest puts it back (`settle_swap`).
        if (
            (folder / MARKER).is_file()
            and folder.name not in kept_versions
            and not folder.name.startswith(SET_ASIDE_PREFIX)
        ):
            yield [folder]
    yield from ([path] for pattern in LEGACY for path in sorted(layout.root.glob(pattern)))


def _subfolders(root: Path) -> list[tuple[str, Path]]:
    return [(path.name, path) for path in sorted(root.iterdir()) if path.is_dir()] if root.is_dir() else []


def _group_by_key(folder: Path) -> dict[str, list[Path]]:
    """`<key>.*` files, one item per key; hidden (in-flight) files are left to the stale-temp cleanup."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir(), key=lambda path: (path.suffix != ".json", path.name)):
        if not path.name.startswith("."):
            groups.setdefault(path.name.split(".", 1)[0], []).append(path)
    return groups


def _last_used(paths: list[Path]) -> float | None:
    """The newest modification time among the paths (and a folder's direct entries); None when all are gone."""
    times = []
    for path in paths:
        try:
            times.append(path.lstat().st_mtime)
            if path.is_dir():
                times += [entry.lstat().st_mtime for entry in path.iterdir()]
        except FileNotFoundError:
            continue
    return max(times, default=None)


def _remove_if_unused(group: list[Path], cutoff: float, dry_run: bool) -> list[Path]:
    removed = []
    for path in group:
        last_used = _last_used(group)
        if last_used is None or last_used >= cutoff:
            break
        if not dry_run:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            log.info("removed %s (unused since %s)", path, time.strftime("%Y-%m-%d", time.localtime(last_used)))
        removed.append(path)
    return removed
