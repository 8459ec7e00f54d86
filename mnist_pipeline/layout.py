"""Where things live under the data directory; one place so tasks, CLI and tests agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    """Paths under `--data-dir`: raw downloads, the published Parquet dataset, its versions, models."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def parquet(self) -> Path:
        """A symlink to the current dataset version, swapped atomically on ingest."""
        return self.root / "parquet"

    @property
    def versions(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def prefect_results(self) -> Path:
        """Prefect's persisted task results and cache records (train task outputs, as JSON)."""
        return self.root / "prefect-results"

    def split_file(self, split: str) -> Path:
        return self.parquet / f"{split}.parquet"

    @property
    def manifest(self) -> Path:
        return self.parquet / "manifest.json"
