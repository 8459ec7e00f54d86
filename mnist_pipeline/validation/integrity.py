"""Tamper check: the manifest's per-split sha256 and fingerprint must equal the content actually read.

Hashes are recomputed with the same functions ingestion used (`checksums.hash_split`), so any change to
pixels, labels or shape after ingest fails here, whatever else the file still looks like.
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
    """(sha256, "") of a split's content, or (None, why) when it is not in the shape ingestion writes.

    An empty file cannot tell its image size, so `empty_shape` (the manifest's) stands in, as at ingest.
    """
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
        expected = entry.get("sha256")
        found, why = hash_table(table, origins[split], (entry.get("height", 0), entry.get("width", 0)))
        hashes[split] = found
        results.append(_split_result(split, expected, found, why))
    expected = manifest.get("fingerprint")
    computable = all(hashes.values())
    found = fingerprint_dataset(hashes) if computable else None
    if found is not None and found == expected:
        message = f"{DATASET}: fingerprint matches the manifest ({found[:16]})"
    elif expected is None:
        message = f"{DATASET}: the manifest has no fingerprint; expected one recorded at ingest"
    elif found is None:
        message = (
            f"{DATASET}: fingerprint cannot be recomputed (see split checks); "
            f"expected the manifest's {str(expected)[:16]}"
        )
    else:
        message = (
            f"{DATASET}: fingerprint of the data read is {found[:16]}, the manifest says {str(expected)[:16]}: "
            "the dataset changed after ingest; expected them equal (re-run `mnist-pipeline ingest`)"
        )
    success = found is not None and found == expected
    results.append(CheckResult(DATASET, FINGERPRINT_EXPECTATION, None, success, found, expected, message))
    return results


def _manifest_entry(manifest: dict[str, Any], split: str) -> dict[str, Any]:
    splits = manifest.get("splits")
    entry = splits.get(split) if isinstance(splits, dict) else None
    return entry if isinstance(entry, dict) else {}


def _split_result(split: str, expected: str | None, found: str | None, why: str) -> CheckResult:
    if found is not None and found == expected:
        message = f"{split}: content sha256 matches the manifest ({found[:16]})"
    elif expected is None:
        message = f"{split}: the manifest has no sha256 for this split; expected one recorded at ingest"
    elif found is None:
        message = f"{split}: content cannot be hashed as ingested data ({why}); expected the manifest's sha256"
    else:
        message = (
            f"{split}: content sha256 is {found[:16]}, the manifest says {str(expected)[:16]}: the file changed "
            "after ingest; expected them equal"
        )
    success = found is not None and found == expected
    return CheckResult(split, SPLIT_EXPECTATION, None, success, found, expected, message)
