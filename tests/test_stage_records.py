"""Unchanged inputs are recognised without heavy work; changed inputs are not mistaken for unchanged ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mnist_pipeline.data.ingest as ingest_module
from mnist_pipeline.data.layout import DataLayout, version_name
from mnist_pipeline.data.sources import list_source_inputs, parse_source
from mnist_pipeline.data.store import IngestResult
from mnist_pipeline.increments.versions import ingest_and_publish_grown
from mnist_pipeline.runs.cache_keys import compute_evaluation_key, compute_validation_key
from tests.support import make_synthetic_digits


def write_npz(path: Path, seed: int) -> Path:
    x_train, y_train = make_synthetic_digits(120, seed=seed)
    x_test, y_test = make_synthetic_digits(40, seed=seed + 100)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def ingest(source: str, data_dir: Path) -> IngestResult:
    """Ingest as `mnist-pipeline ingest` does: a version is reused only once the gate has made it current."""
    result, report = ingest_and_publish_grown(source, DataLayout(data_dir))
    assert report.success
    return result


def test_an_unchanged_input_is_not_decoded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = f"npz:{write_npz(tmp_path / 'digits.npz', seed=1)}"
    first = ingest(source, tmp_path / "data")
    assert first.written and not first.reused

    def refuse_to_decode(*_: object) -> None:
        raise AssertionError("the source was decoded although its input is unchanged")

    monkeypatch.setattr(ingest_module, "load_source", refuse_to_decode)
    version = DataLayout(tmp_path / "data").versions / version_name(first.manifest["fingerprint"])
    os.utime(version, (1_000_000, 1_000_000))
    again = ingest(source, tmp_path / "data")
    assert again.reused and not again.written
    assert again.manifest == first.manifest
    assert version.stat().st_mtime > 1_000_000, "a reused version must count as newest for retention"


def test_a_changed_input_or_an_edited_split_is_ingested_again(tmp_path: Path) -> None:
    npz = write_npz(tmp_path / "digits.npz", seed=1)
    data = tmp_path / "data"
    first = ingest(f"npz:{npz}", data)
    write_npz(npz, seed=2)
    changed = ingest(f"npz:{npz}", data)
    assert not changed.reused and changed.written
    assert changed.manifest["fingerprint"] != first.manifest["fingerprint"]

    split_file = DataLayout(data).split_file("test")
    table = pq.read_table(split_file)
    split_file.unlink()
    pq.write_table(table, split_file, compression="gzip")
    edited = ingest(f"npz:{npz}", data)
    assert not edited.reused
    assert edited.manifest["fingerprint"] == changed.manifest["fingerprint"]
    assert ingest(f"npz:{npz}", data).reused


def test_idx_inputs_are_the_four_files(tmp_path: Path) -> None:
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz"):
        (tmp_path / name).write_bytes(b"x")
    spec = parse_source(f"idx:{tmp_path}")
    assert list_source_inputs(spec, tmp_path / "raw") is None
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"x")
    assert [path.name for path in list_source_inputs(spec, tmp_path / "raw") or []] == [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte",
    ]
    assert list_source_inputs(parse_source("pypi"), tmp_path / "raw") is None


def test_validation_key_follows_the_file_bytes(tmp_path: Path) -> None:
    ingest(f"npz:{write_npz(tmp_path / 'digits.npz', seed=1)}", tmp_path / "data")
    version = DataLayout(tmp_path / "data").parquet.resolve()
    key = compute_validation_key(version, (28, 28))
    assert compute_validation_key(version, (28, 28)) == key
    assert compute_validation_key(version, (32, 32)) != key
    manifest = version / "manifest.json"
    stat = manifest.stat()
    manifest.write_bytes(manifest.read_bytes().replace(b'"source": "npz"', b'"source": "url"'))
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert compute_validation_key(version, (28, 28)) != key


def test_evaluation_key_covers_model_test_data_and_limit() -> None:
    base = compute_evaluation_key("model-a", "t" * 64, None)
    assert base == compute_evaluation_key("model-a", "t" * 64, None)
    others = {
        compute_evaluation_key("model-b", "t" * 64, None),
        compute_evaluation_key("model-a", "u" * 64, None),
        compute_evaluation_key("model-a", "t" * 64, 500),
    }
    assert base not in others and len(others) == 3
