"""Garbage collection: champions, rollback targets and their data stay, and so does whatever was used within the
grace period; old unused models (with their siblings), evaluations, records and dataset versions go."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cli.main import main
from mnist_pipeline.champion.registry import force_promote
from mnist_pipeline.champion.retention import collect_garbage
from mnist_pipeline.champion.rule import Candidate
from mnist_pipeline.data.ingest import record_dataset
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset
from mnist_pipeline.data.versions import FAILED_SUFFIX
from mnist_pipeline.errors import DataFormatError, PipelineError
from mnist_pipeline.files.atomic import hold_lock
from mnist_pipeline.files.usage import mark_used
from tests.test_concurrency_store import small_dataset

LONG_AGO = time.time() - 30 * 86400


def age(*paths: Path) -> None:
    """Make paths (and a folder's direct entries) look last used a month ago."""
    for path in paths:
        for entry in (*path.iterdir(), path) if path.is_dir() else (path,):
            os.utime(entry, (LONG_AGO, LONG_AGO))


def write(path: Path, old: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if old:
        age(path)
    return path


def save_model(layout: DataLayout, key: str, old: bool = True) -> list[Path]:
    """A model's files as a run leaves them (keys, like real ones, have no "."), plus the ONNX serving copy."""
    model = layout.model_file("cnn", key)
    return [write(model.with_suffix(suffix), old) for suffix in (".json", ".keras", ".onnx")]


def promote(layout: DataLayout, key: str, fingerprint: str) -> None:
    candidate = Candidate(key, str(layout.model_file("cnn", key)), f"run-{key}", fingerprint, 100, 0.9, (0.9,) * 10)
    force_promote(layout.registry, "cnn", candidate, "test", at="2026")


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def test_champions_rollback_targets_their_data_and_recent_things_stay_old_unused_ones_go(layout: DataLayout) -> None:
    trained_on, unused, current = (publish_dataset(small_dataset(seed), layout).manifest for seed in (0, 1, 2))
    versions = [layout.versions / manifest["fingerprint"][:16] for manifest in (trained_on, unused, current)]
    failed = versions[2].with_name(versions[2].name + FAILED_SUFFIX)  # once failed the gate, then passed
    failed.mkdir()
    (failed / ".created-by-mnist-pipeline").write_text("")
    foreign = layout.versions / "0123456789abcdef"  # copied in by hand: not ingest's to delete
    foreign.mkdir()
    age(*versions, failed, foreign)
    rollback_target, champion = save_model(layout, "k0"), save_model(layout, "k1")
    promote(layout, "k0", trained_on["fingerprint"])
    promote(layout, "k1", current["fingerprint"])
    old_model, recent_model = save_model(layout, "k2"), save_model(layout, "k3", old=False)
    legacy_sidecar = write(layout.model_file("cnn", "k2").with_name("k2.keras.json"))
    stale_state, fresh_state = write(layout.resume_file("cnn", "k4")), write(layout.resume_file("cnn", "k5"), old=False)
    resumed = [*save_model(layout, "k6"), write(layout.resume_file("cnn", "k6"), old=False)]  # newest file counts
    old_eval = [write(layout.evaluation_file("cnn", "e0").with_suffix(s)) for s in (".json", ".parquet")]
    recent_eval = write(layout.evaluation_file("cnn", "e1"), old=False)
    old_record, recent_record = write(layout.validations / "v0.json"), write(layout.validations / "v1.json", False)
    legacy = [write(layout.root / "prefect-results" / "train-cnn-k2"), write(layout.locks / "pin-0123")]
    expected = sorted([*old_model, legacy_sidecar, stale_state, *old_eval, old_record, versions[1], failed, *legacy])

    assert sorted(collect_garbage(layout, dry_run=True)) == expected
    assert all(path.exists() for path in expected)
    assert sorted(collect_garbage(layout)) == expected

    assert not any(path.exists() for path in expected)
    kept = [*rollback_target, *champion, *recent_model, fresh_state, *resumed, recent_eval, recent_record]
    assert all(path.exists() for path in [*kept, versions[0], versions[2], foreign])
    assert collect_garbage(layout) == []


def test_with_no_grace_only_champions_and_the_current_version_stay(layout: DataLayout) -> None:
    """--grace-days 0 is for a data dir no run is using: even a model written a moment ago goes."""
    current = publish_dataset(small_dataset(0), layout).manifest
    champion = save_model(layout, "k0", old=False)
    promote(layout, "k0", current["fingerprint"])
    fresh = save_model(layout, "k1", old=False)
    time.sleep(0.01)

    assert sorted(collect_garbage(layout, grace_days=0)) == sorted(fresh)
    assert all(path.exists() for path in champion) and (layout.versions / current["fingerprint"][:16]).is_dir()


def test_ingest_records_of_removed_versions_go_with_them(layout: DataLayout) -> None:
    fingerprints = [publish_dataset(small_dataset(seed), layout).manifest["fingerprint"] for seed in range(3)]
    for seed, fingerprint in enumerate(fingerprints):
        record_dataset(layout, f"input-{seed}", fingerprint)
    (layout.ingest_records / "foreign.json").write_text("not json")
    # The first version once failed the gate (set aside), then passed when ingested again: both folders exist.
    failed = layout.versions / (fingerprints[0][:16] + FAILED_SUFFIX)
    failed.mkdir()
    (failed / ".created-by-mnist-pipeline").write_text("")
    age(failed, layout.versions / fingerprints[1][:16])

    removed = collect_garbage(layout)

    assert sorted(removed) == sorted(
        [failed, layout.versions / fingerprints[1][:16], layout.ingest_records / "input-1.json"]
    )
    assert sorted(path.name for path in layout.ingest_records.iterdir()) == [
        "foreign.json",
        "input-0.json",
        "input-2.json",
    ]


def test_marking_a_file_used_waits_for_a_running_collection(layout: DataLayout) -> None:
    """What a run reuses is touched under the gc lock held shared: never between a collection's check and its
    deletion."""
    model = save_model(layout, "k0")[1]
    marked = threading.Event()
    with hold_lock(layout.gc_lock):
        marker = threading.Thread(target=lambda: mark_used(layout.gc_lock, [model]) and marked.set())
        marker.start()
        assert not marked.wait(0.3)
    assert marked.wait(10)
    marker.join()
    assert model.stat().st_mtime > LONG_AGO + 86400
    assert not mark_used(layout.gc_lock, [model, layout.model_file("cnn", "missing")])


def test_an_unreadable_registry_a_negative_grace_or_no_data_dir_deletes_nothing(layout: DataLayout) -> None:
    old = save_model(layout, "k0")
    layout.registry.write_text("{")
    with pytest.raises(DataFormatError, match=r"champions\.json"):
        collect_garbage(layout)
    layout.registry.unlink()
    with pytest.raises(PipelineError, match="--grace-days: expected a number of days of 0 or more, found -1"):
        collect_garbage(layout, grace_days=-1)
    assert all(path.exists() for path in old)
    assert collect_garbage(DataLayout(layout.root / "nothing-ran-here")) == []
    assert not (layout.root / "nothing-ran-here").exists()


def test_cli_gc_prints_one_line_per_item_and_a_count(layout: DataLayout, capsys: pytest.CaptureFixture[str]) -> None:
    old = save_model(layout, "k0")
    assert main(["gc", "--data-dir", str(layout.root), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        *(f"would remove: {path}" for path in old),
        "3 item(s) would go (dry run)",
    ]
    assert main(["gc", "--data-dir", str(layout.root), "--grace-days", "40"]) == 0
    assert capsys.readouterr().out.splitlines() == ["0 item(s) removed"]
    assert main(["gc", "--data-dir", str(layout.root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 item(s) removed"
    assert not any(path.exists() for path in old)
    assert main(["gc", "--data-dir", str(layout.root), "--grace-days", "-2"]) == 2
