"""The increment gate's steps: blocking checks, the drift report, and the decision between them (docs/increments.md).

`dataset` is the version a batch is checked against: the current one, or the base a pipeline run just ingested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from mnist_pipeline.champion.registry import find_champion, load_registry
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import images_from_table, read_manifest, read_split
from mnist_pipeline.errors import DataFormatError, PipelineError
from mnist_pipeline.increments import DRIFT_MODES, DriftMode
from mnist_pipeline.increments.checks import known_images, run_checks
from mnist_pipeline.increments.drift import (
    N_CLASSES,
    REFERENCE_SAMPLE,
    SAMPLE_SEED,
    DriftReport,
    champion_probabilities,
    compute_drift,
)
from mnist_pipeline.increments.drift_report import draw_drift_picture
from mnist_pipeline.increments.hashes import hash_images, list_increments, read_index
from mnist_pipeline.increments.inbox import PendingBatch
from mnist_pipeline.increments.store import read_increment_manifest
from mnist_pipeline.increments.versions import find_current_fingerprint
from mnist_pipeline.modeling.registry import CNN_MODEL
from mnist_pipeline.modeling.serving import open_engine
from mnist_pipeline.predict.preprocess import MNIST_SHAPE
from mnist_pipeline.validation.results import CheckResult

# The drift reference is read from at most this many row groups (of 16 384 images as the dataset writes them).
REFERENCE_ROW_GROUPS = 4


@dataclass(frozen=True)
class DriftOutcome:
    """The drift report of one batch and its picture (PNG), for the manifest and the artifact."""

    report: DriftReport
    picture: bytes


def check_batch(layout: DataLayout, dataset: DataLayout, batch: PendingBatch, min_images: int) -> list[CheckResult]:
    """Every blocking check of `batch`: against itself, the accepted increments (stored hashes), `dataset`'s test
    split (hashed once per check: 10 000 images) and the class shares of the train split it would join."""
    test_file = dataset.split_file("test")
    if not test_file.is_file():
        raise DataFormatError(
            f"{test_file}: expected the published dataset's test split to check the batch against, found none "
            "(run `mnist-pipeline ingest` first; the batch waits in the inbox for `add-data --pending`)"
        )
    mnist_test = read_split(test_file).images
    index = read_index(layout)
    known = known_images(index, hash_images(mnist_test), batch.shas)
    return run_checks(batch, known, min_images, count_train_labels(layout, dataset, list_increments(index)))


def count_train_labels(layout: DataLayout, dataset: DataLayout, increments: list[str]) -> np.ndarray:
    """Rows per class of the train split a batch would join: `dataset`'s train split (its label column only) plus
    the train parts of the accepted `increments` it does not hold yet (their manifests' counts)."""
    with pq.ParquetFile(dataset.split_file("train"), memory_map=True) as parquet:
        labels = parquet.read(columns=["label"]).column("label").to_numpy()
    counts = np.bincount(labels[(labels >= 0) & (labels < N_CLASSES)], minlength=N_CLASSES)
    held = set(read_manifest(dataset).get("increments") or [])
    for increment in increments:
        if increment not in held:
            counts += np.asarray(read_increment_manifest(layout, increment)["labels"]["train"], dtype=np.int64)
    return counts


def sample_split(path: str, limit: int = REFERENCE_SAMPLE, max_groups: int = REFERENCE_ROW_GROUPS) -> Split:
    """A seeded sample of at most `limit` rows of a split file, drawn from at most `max_groups` of its row groups
    (chosen by the same seed), so neither its time nor its memory grows with the split. The same file gives the
    same sample every time."""
    rng = np.random.default_rng(SAMPLE_SEED)
    with pq.ParquetFile(path, memory_map=True) as parquet:
        groups = parquet.num_row_groups
        chosen = np.sort(rng.choice(groups, size=min(groups, max_groups), replace=False)) if groups else []
        table = parquet.read_row_groups(list(chosen), columns=["label", "height", "width", "image"])
    if table.num_rows > limit:
        table = table.take(np.sort(rng.choice(table.num_rows, size=limit, replace=False)))
    if table.num_rows == 0:
        return Split(images=np.zeros((0, *MNIST_SHAPE), dtype=np.uint8), labels=np.zeros(0, dtype=np.int64))
    return Split(images=images_from_table(table, path).copy(), labels=table.column("label").to_numpy().astype(np.int64))


def measure_drift(layout: DataLayout, dataset: DataLayout, batch: PendingBatch) -> DriftOutcome:
    """The batch against a sample of the training data: the current published version's (the champion's), else
    `dataset`'s (before the first publish). The CNN champion's outputs on the test split, which it was not trained
    on, are the reference for its outputs on the batch."""
    reference_layout = layout if find_current_fingerprint(layout) is not None else dataset
    reference = sample_split(str(reference_layout.split_file("train")))
    champion = find_champion(load_registry(layout.registry), CNN_MODEL)
    engine = open_engine(layout, CNN_MODEL, champion.key) if champion is not None else None
    batch_probs = reference_probs = None
    if engine is not None:
        batch_probs = champion_probabilities(engine, batch.images)
        reference_probs = champion_probabilities(engine, sample_split(str(reference_layout.split_file("test"))).images)
    report = compute_drift(batch.images, batch.labels, reference.images, reference.labels, batch_probs, reference_probs)
    picture = draw_drift_picture(batch.images, reference.images, batch.labels, reference.labels, report)
    return DriftOutcome(report=report, picture=picture)


def check_drift_mode(value: str) -> DriftMode:
    """`--drift`'s value, or a user error naming the choices."""
    for mode in DRIFT_MODES:
        if value == mode:
            return mode
    raise PipelineError(f"--drift: expected one of {', '.join(DRIFT_MODES)}, found {value!r}")


def decide(checks: list[CheckResult], drift: DriftReport | None, drift_mode: DriftMode) -> list[str]:
    """Why the batch is refused, one line per failed check (and flagged drift test with `--drift block`);
    empty when it is accepted."""
    reasons = [check.message for check in checks if not check.success]
    if drift is not None and drift_mode == "block":
        reasons += [f"drift (--drift block): {line}" for line in drift.lines()]
    return reasons
