"""Dataset versions that grow: the base version plus every accepted increment, written as one more version.

Train gets the increments' train parts appended, `test` stays the base's, `new` holds their test parts; the
manifest's lineage fields are described in docs/increments.md. With no increment the base is the version.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mnist_pipeline import defaults
from mnist_pipeline.champion.registry import load_registry
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.ingest import ingest
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec
from mnist_pipeline.data.store import IngestResult, read_manifest, read_split, write_version
from mnist_pipeline.data.versions import ingest_lock
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.increments.hashes import list_increments, read_index
from mnist_pipeline.increments.store import read_part
from mnist_pipeline.predict.preprocess import MNIST_SHAPE
from mnist_pipeline.validation.publish import publish_if_valid, validate_version
from mnist_pipeline.validation.results import ValidationReport


def grow_version(layout: DataLayout, base_fingerprint: str) -> IngestResult:
    """Write the base version grown by every accepted increment (not yet current); the base itself without any."""
    base = layout.pin(base_fingerprint)
    increments = list_increments(read_index(layout))
    if not increments:
        return IngestResult(read_manifest(base), written=False, path=base.parquet)
    manifest = read_manifest(base)
    train, test = read_split(base.split_file("train")), read_split(base.split_file("test"))
    trains = [read_part(layout, increment, "train") for increment in increments]
    tests = [read_part(layout, increment, "test") for increment in increments]
    if train.images.shape[1:] != MNIST_SHAPE:
        raise DataFormatError(
            f"{base.parquet}: expected {MNIST_SHAPE[0]}x{MNIST_SHAPE[1]} images to grow with MNIST-style increments, "
            f"found {train.images.shape[1]}x{train.images.shape[2]}"
        )
    dataset = RawDataset(
        train=concatenate([train, *trains]),
        test=test,
        source=manifest["source"],
        origin=manifest["origin"],
        new=concatenate(tests),
    )
    lineage = {
        "base": base_fingerprint,
        "parent": find_current_fingerprint(layout),
        "increments": increments,
        "increment_rows": {"train": sum(part.rows for part in trains), "test": sum(part.rows for part in tests)},
    }
    with ingest_lock(layout):
        return write_version(dataset, layout, lineage)


def concatenate(splits: list[Split], shape: tuple[int, int] = MNIST_SHAPE) -> Split:
    """One split of all rows in order; empty parts (read back without an image size) add nothing."""
    parts = [split for split in splits if split.rows]
    if not parts:
        return Split(images=np.zeros((0, *shape), dtype=np.uint8), labels=np.zeros(0, dtype=np.int64))
    return Split(
        images=np.concatenate([split.images for split in parts]),
        labels=np.concatenate([split.labels for split in parts]),
    )


def find_current_fingerprint(layout: DataLayout) -> str | None:
    """The current version's fingerprint (the parent of a version grown now), or None before the first publish."""
    try:
        return read_manifest(layout.unpinned()).get("fingerprint")
    except DataFormatError:
        return None


def ingest_and_publish_grown(
    source: str | SourceSpec, layout: DataLayout, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> tuple[IngestResult, ValidationReport]:
    """Ingest the base and publish it through the validation gate a pipeline run uses; with accepted increments,
    grow it and publish the grown version through the same gate (the base itself is then never current)."""
    result = ingest(source, layout, image_shape)
    fingerprint = result.manifest["fingerprint"]
    if not list_increments(read_index(layout)):
        return result, publish_if_valid(layout, fingerprint, image_shape)
    report = validate_version(layout, fingerprint, image_shape)
    if not report.success:
        return result, report
    grown = grow_version(layout, fingerprint)
    return grown, publish_if_valid(layout, grown.manifest["fingerprint"], image_shape)


def find_untrained_increment(layout: DataLayout) -> str | None:
    """The last accepted increment when no model in the champion registry's history was trained on a version that
    holds it (the retrain growing it died, or never ran), else None. A version holds every increment accepted before
    it was grown, so the last one tells."""
    accepted = list_increments(read_index(layout, ("increment",)))
    trained: set[str] = set()
    for fingerprint in {event["candidate"]["data_fingerprint"] for event in load_registry(layout.registry).history}:
        with contextlib.suppress(DataFormatError):  # a version gc deleted counts as untrained
            trained.update(read_manifest(layout.pin(fingerprint)).get("increments", []))
    return accepted[-1] if accepted and accepted[-1] not in trained else None
