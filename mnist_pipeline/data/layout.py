"""Where things live under the data directory; one place so tasks, CLI and tests agree."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from mnist_pipeline.errors import DataFormatError

FILE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class DataLayout:
    """Paths under `--data-dir`. A layout pinned to one dataset version (`pin`) reads it even if a concurrent ingest
    publishes another: a run computes its cache keys from one fingerprint and must train on that data."""

    root: Path
    version: str | None = None

    def pin(self, fingerprint: str) -> DataLayout:
        return replace(self, version=version_name(fingerprint))

    def unpinned(self) -> DataLayout:
        """The same data dir, reading whichever version is current."""
        return replace(self, version=None)

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def parquet(self) -> Path:
        """The pinned version's folder, else the symlink to the current version (swapped atomically on ingest)."""
        if self.version:
            return self.versions / self.version
        return self.root / "parquet"

    @property
    def versions(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def evaluations(self) -> Path:
        """Recorded evaluations' predictions, one Parquet file per evaluation key, reused by unchanged runs."""
        return self.root / "evaluations"

    @property
    def ingest_records(self) -> Path:
        """Which raw input gave which published dataset, so an unchanged input is not decoded again."""
        return self.root / "ingest-records"

    @property
    def validations(self) -> Path:
        """Recorded passes of the validation gate, one JSON summary per validation key."""
        return self.root / "validations"

    def model_file(self, model: str, key: str) -> Path:
        """A trained model's file, from its name and key (recorded paths go stale when the data dir moves); both
        come from files, so both are checked (`check_file_stem`)."""
        return self.models / check_file_stem(model, "model name") / f"{check_file_stem(key, 'model key')}.keras"

    def resume_file(self, model: str, key: str) -> Path:
        """Training state saved at each epoch end, so a killed run resumes; removed once the model is saved."""
        return self.models / check_file_stem(model, "model name") / f"{check_file_stem(key, 'model key')}.resume.npz"

    @property
    def locks(self) -> Path:
        """Lock files: the ingest lock and the gc lock."""
        return self.root / ".locks"

    @property
    def gc_lock(self) -> Path:
        """Held exclusively by garbage collection, shared by whoever marks a file used (`files.usage`)."""
        return self.locks / "gc.lock"

    @property
    def registry(self) -> Path:
        """The champion registry."""
        return self.models / "champions.json"

    @property
    def inbox(self) -> Path:
        """Landed batches waiting for the increment gate (`<batch-id>/`), plus `refused/`, `feedback/`, `review*/`."""
        return self.root / "inbox"

    @property
    def refused(self) -> Path:
        return self.inbox / "refused"

    @property
    def feedback(self) -> Path:
        """The web app's pending corrections, in the ImageFolder layout."""
        return self.inbox / "feedback"

    @property
    def review(self) -> Path:
        """Unlabelled scans waiting for a person on the review page, and what each became (`review.queue`)."""
        return self.inbox / "review"

    @property
    def reviewed(self) -> Path:
        """The review page's labels waiting for the next batch, an ImageFolder like `feedback`."""
        return self.inbox / "reviewed"

    @property
    def increments(self) -> Path:
        """Accepted batches, immutable: `<increment-id>/{train,test}.parquet` and `manifest.json`."""
        return self.root / "increments"

    @property
    def increments_index(self) -> Path:
        """The content hash, part and increment of every accepted image, so a check never re-hashes history."""
        return self.increments / "index.parquet"

    @property
    def increments_lock(self) -> Path:
        """Held while the gate checks and accepts or refuses a batch, so two gates never accept the same images."""
        return self.locks / "increments.lock"

    def evaluation_file(self, model: str, key: str) -> Path:
        return (
            self.evaluations
            / check_file_stem(model, "model name")
            / f"{check_file_stem(key, 'evaluation key')}.parquet"
        )

    def split_file(self, split: str) -> Path:
        return self.parquet / f"{split}.parquet"

    @property
    def manifest(self) -> Path:
        return self.parquet / "manifest.json"


def check_file_stem(value: object, what: str) -> str:
    """`value` if it can name a file in its folder and nothing else (keys and model names can); a key read from an
    edited metrics.json or registry such as `../../tmp/x` is refused before it becomes a path."""
    if not isinstance(value, str) or not FILE_STEM.fullmatch(value):
        raise DataFormatError(
            f"{what} {str(value)[:120]!r}: expected letters, digits, '_' or '-' (at most 100, not starting with '-'), "
            "such as a 24-hex-digit key"
        )
    return value


def version_name(fingerprint: str) -> str:
    """Folder name of a dataset version under `datasets/`."""
    return fingerprint[:16]
