"""The validation gate: read the published dataset, profile it, run the expectations, report every outcome."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from mnist_pipeline.data.dataset import NEW_SPLIT, SPLITS
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import CANONICAL_SOURCES
from mnist_pipeline.data.store import read_manifest, read_table
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.validation.duplicates import find_duplicates
from mnist_pipeline.validation.gx_runner import run_suites
from mnist_pipeline.validation.image_profile import count_classes, profile_split
from mnist_pipeline.validation.integrity import check_integrity
from mnist_pipeline.validation.messages import describe_result
from mnist_pipeline.validation.results import CheckResult, ValidationReport
from mnist_pipeline.validation.suite import CLASSES, CLASSES_FRAME, PROFILE_FRAME, build_suite, choose_image_shape


def validate_dataset(layout: DataLayout, image_shape: tuple[int, int] | None = None) -> ValidationReport:
    """Check the published dataset, every image `image_shape` (None: as the manifest declares); bad data gives a
    failed report, only unreadable files raise DataFormatError."""
    started = time.perf_counter()
    manifest = read_manifest(layout)
    if not isinstance(manifest, dict):
        raise DataFormatError(f"{layout.manifest}: expected a JSON object, found {type(manifest).__name__}")
    splits = list_splits(manifest)
    origins = {split: str(layout.split_file(split)) for split in splits}
    tables = {split: read_table(layout.split_file(split)) for split in splits}
    profiles = {split: profile_split(tables[split], origins[split]) for split in splits}
    checks = _run_expectations(manifest, profiles, image_shape)
    checks += check_integrity(manifest, tables, origins)
    return ValidationReport(
        success=all(check.success for check in checks),
        checks=checks,
        duplicates=find_duplicates(profiles),
        fingerprint=str(manifest.get("fingerprint") or ""),
        seconds=time.perf_counter() - started,
    )


def list_splits(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The splits to check: train and test, and `new` when the manifest of a grown version lists it."""
    splits = manifest.get("splits")
    return (*SPLITS, NEW_SPLIT) if isinstance(splits, dict) and NEW_SPLIT in splits else SPLITS


def _run_expectations(
    manifest: dict[str, Any], profiles: dict[str, pd.DataFrame], image_shape: tuple[int, int] | None
) -> list[CheckResult]:
    # A grown version is MNIST plus increments: its train split has grown, but its test split is MNIST's own,
    # unchanged, and keeps the canonical checks (exactly 10 000 rows of 28x28).
    canonical = manifest.get("source") in CANONICAL_SOURCES
    grown = bool(manifest.get("increments"))
    shape = choose_image_shape(manifest, canonical, image_shape)
    suites = {split: build_suite(split, canonical and not (grown and split == "train"), shape) for split in profiles}
    batches = {
        split: {PROFILE_FRAME: profile, CLASSES_FRAME: count_classes(profile, CLASSES)}
        for split, profile in profiles.items()
    }
    results = run_suites(batches, suites)
    return [describe_result(split, item) for split in profiles for item in results[split]]
