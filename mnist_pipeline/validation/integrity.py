"""Tamper check: the manifest's per-split sha256 and fingerprint must equal the content actually read.

Recomputed with ingestion's own `checksums.hash_split`, so any change to pixels, labels or shape fails here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mnist_pipeline.data.checksums import fingerprint_dataset, hash_split
from mnist_pipeline.data.store import images_from_table
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.validation.results import CheckResult

SPLIT_EXPECTATION = "expect_split_sha256_to_match_manifest"
FINGERPRINT_EXPECTATION = "expect_fingerprint_to_match_manifest"
DATASET = "dataset"


def hash_table(table: pa.Table, origin: str, empty_shape: tuple[int, int]) -> tuple[str | None, str]:
    """(sha256, "") of a split's content, or (None, why) when it is not in the shape ingestion writes; an empty file
    cannot tell its image size, so `empty_shape` (the manifest's) stands in, as at ingest."""
    if table.num_rows == 0:
        return hash_split(np.zeros((0, *empty_shape), dtype=np.uint8), np.zeros(0, dtype=np.int64)), ""
    labels = table.column("label")
    if labels.null_count:
        return None, f"{labels.null_count} null labels"
    if not pa.types.is_integer(labels.type):
        return None, f"labels of type {labels.type}"
    try:
        images = images_from_table(table, origin)
    except DataFormatError as exc:
        return None, str(exc).removeprefix(f"{origin}: ")
    return hash_split(images, labels.to_numpy().astype(np.int64, copy=False)), ""


def check_integrity(
    manifest: dict[str, Any], tables: dict[str, pa.Table], origins: dict[str, str]
) -> list[CheckResult]:
    """One result per split (content vs manifest sha256) and one for the dataset fingerprint."""
    results, hashes = [], {}
    for split, table in tables.items():
        entry = _manifest_entry(manifest, split)
        found, why = hash_table(table, origins[split], (entry.get("height", 0), entry.get("width", 0)))
        hashes[split] = found
        results.append(_compare(split, SPLIT_EXPECTATION, "content sha256", entry.get("sha256"), found, why))
    found = fingerprint_dataset(hashes) if all(hashes.values()) else None
    fingerprint = manifest.get("fingerprint")
    results.append(_compare(DATASET, FINGERPRINT_EXPECTATION, "fingerprint", fingerprint, found, "see split checks"))
    return results


def _manifest_entry(manifest: dict[str, Any], split: str) -> dict[str, Any]:
    splits = manifest.get("splits")
    entry = splits.get(split) if isinstance(splits, dict) else None
    return entry if isinstance(entry, dict) else {}


def _compare(subject: str, expectation: str, what: str, expected: Any, found: str | None, why: str) -> CheckResult:
    """Recorded hash (`what`) vs recomputed one; `why` says why it could not be recomputed."""
    if found is not None and found == expected:
        message = f"{subject}: {what} matches the manifest ({found[:16]})"
    elif expected is None:
        message = f"{subject}: the manifest has no {what}; expected one recorded at ingest"
    elif found is None:
        message = f"{subject}: {what} cannot be computed from the data read ({why}); expected the manifest's {what}"
    else:
        message = (
            f"{subject}: {what} is {found[:16]}, the manifest says {str(expected)[:16]}: the data changed after "
            "ingest; expected them equal (re-run `mnist-pipeline ingest`)"
        )
    success = found is not None and found == expected
    return CheckResult(subject, expectation, None, success, found, expected, message)
