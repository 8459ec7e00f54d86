"""Bounded data dir: a pruned model takes its cache entries along, pinned models stay, reused models count as new,
stale resume states and the ingest records of removed dataset versions go."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.champion.registry import record_decision
from mnist_pipeline.champion.retention import (
    KEEP_ENV,
    RESUME_UNUSED_DAYS,
    mark_model_used,
    pin_models,
    prune_models,
)
from mnist_pipeline.champion.rule import Candidate, PromotionPolicy, decide_promotion
from mnist_pipeline.data.ingest_records import record_dataset
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset
from mnist_pipeline.data.versions import FAILED_SUFFIX, KEPT_VERSIONS
from mnist_pipeline.modeling.prediction_files import read_model_key, tag_with_model_key
from mnist_pipeline.runs.cache_entries import evaluate_record_name, train_record_name
from tests.test_concurrency_store import small_dataset


def save_model(layout: DataLayout, key: str, mtime: float) -> Path:
    """Keys, like the real (hex) ones, have no "-": record and pin names end in "-<key>"."""
    path = layout.model_file("cnn", key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"model")
    os.utime(path, (mtime, mtime))
    (layout.prefect_results / train_record_name("cnn", key)).write_text("{}")
    return path


def record_predictions(layout: DataLayout, eval_key: str, model_key: str | None) -> Path:
    table = pa.Table.from_pandas(pd.DataFrame({"row_id": [0, 1], "predicted": [3, 4]}), preserve_index=False)
    path = layout.evaluation_file("cnn", eval_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table if model_key is None else tag_with_model_key(table, model_key), path)
    (layout.prefect_results / evaluate_record_name("cnn", eval_key)).write_text("{}")
    return path


def make_champion(layout: DataLayout, model_file: Path) -> None:
    candidate = Candidate(model_file.stem, str(model_file), "run-0", "f" * 64, 100, 0.9, (0.9,) * 10)
    decision = decide_promotion("cnn", candidate, None, PromotionPolicy())
    record_decision(layout.registry, decision, candidate, at="2026")


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    layout.prefect_results.mkdir(parents=True)
    return layout


def test_a_pruned_model_takes_its_records_and_evaluations_along(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion, old, kept = (save_model(layout, key, mtime) for key, mtime in (("k0", 1000), ("k1", 2000), ("k2", 3000)))
    make_champion(layout, champion)
    scored = {key: record_predictions(layout, f"e{key}", key) for key in ("k0", "k1", "k2")}
    older_scoring = record_predictions(layout, "ek1limited", "k1")  # a --test-limit run scored the same model
    legacy = record_predictions(layout, "elegacy", None)  # recorded before evaluations named their model
    monkeypatch.setenv(KEEP_ENV, "1")

    removed = prune_models(layout)

    results = layout.prefect_results
    assert sorted(removed) == sorted(
        [
            old,
            results / train_record_name("cnn", "k1"),
            scored["k1"],
            results / evaluate_record_name("cnn", "ek1"),
            older_scoring,
            results / evaluate_record_name("cnn", "ek1limited"),
            legacy,  # its key can never match again: evaluation keys hash the evaluation code, which tags them now
            results / evaluate_record_name("cnn", "elegacy"),
        ]
    )
    assert sorted(path.name for path in layout.evaluations.joinpath("cnn").iterdir()) == [
        "ek0.parquet",
        "ek2.parquet",
    ]
    assert sorted(path.name for path in results.iterdir()) == sorted(
        [
            train_record_name("cnn", "k0"),
            train_record_name("cnn", "k2"),
            evaluate_record_name("cnn", "ek0"),
            evaluate_record_name("cnn", "ek2"),
        ]
    )
    assert champion.is_file() and kept.is_file()


def test_entries_left_by_a_kill_mid_prune_or_a_model_deleted_by_hand_go_on_the_next_prune(layout: DataLayout) -> None:
    gone = save_model(layout, "gone", 1000)
    evaluation = record_predictions(layout, "egone", "gone")
    stray_record = layout.prefect_results / evaluate_record_name("cnn", "edeleted")  # its predictions file is gone
    stray_record.write_text("{}")
    live = save_model(layout, "live", 2000)
    live_evaluation = record_predictions(layout, "elive", "live")
    gone.unlink()

    removed = prune_models(layout)

    assert sorted(removed) == sorted(
        [
            layout.prefect_results / train_record_name("cnn", "gone"),
            evaluation,
            layout.prefect_results / evaluate_record_name("cnn", "egone"),
            stray_record,
        ]
    )
    assert live.is_file() and live_evaluation.is_file()


def test_models_a_running_flow_pinned_survive_pruning_with_their_entries(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_use, newer = save_model(layout, "inuse", 1000), save_model(layout, "newer", 2000)
    evaluation = record_predictions(layout, "einuse", "inuse")
    monkeypatch.setenv(KEEP_ENV, "1")
    # A run pins both the model it reuses and one it has yet to train (no file yet, but a record of an earlier one).
    (layout.prefect_results / train_record_name("cnn", "totrain")).write_text("{}")

    # It was killed long ago mid-training and is about to resume from its state.
    resume = layout.resume_file("cnn", "totrain")
    resume.write_bytes(b"state")
    os.utime(resume, (1, 1))

    with pin_models(layout, [("cnn", "inuse"), ("cnn", "totrain")]):
        assert prune_models(layout) == []
        assert in_use.is_file() and evaluation.is_file() and newer.is_file() and resume.is_file()
        assert (layout.prefect_results / train_record_name("cnn", "totrain")).is_file()

    pins = sorted(layout.locks.iterdir())
    assert [pin.name for pin in pins] == ["model-cnn-inuse", "model-cnn-totrain"]

    removed = prune_models(layout)  # the run has returned: its pins are released, and unused pin files go
    assert in_use in removed and evaluation in removed and newer.is_file()
    assert layout.prefect_results / train_record_name("cnn", "totrain") in removed and resume in removed
    assert set(pins) <= set(removed) and not list(layout.locks.iterdir())


def test_predictions_name_their_model_key_and_keep_pandas_metadata(tmp_path: Path) -> None:
    frame = pd.DataFrame({"row_id": [5, 6], "predicted": [1, 2]}, index=[10, 11])
    path = tmp_path / "p.parquet"
    pq.write_table(tag_with_model_key(pa.Table.from_pandas(frame), "abc123"), path)

    assert read_model_key(path) == "abc123"
    assert pd.read_parquet(path).index.tolist() == [10, 11]  # pandas' own metadata survived the tagging
    (tmp_path / "torn.parquet").write_bytes(b"PAR1 half a file")
    with pytest.raises((OSError, pa.ArrowException)):
        read_model_key(tmp_path / "torn.parquet")


def test_an_evaluation_that_cannot_be_read_now_is_left_for_a_later_prune(layout: DataLayout) -> None:
    unreadable = layout.evaluation_file("cnn", "eunreadable")
    unreadable.parent.mkdir(parents=True)
    unreadable.write_bytes(b"not parquet: a read that failed is no proof nobody owns it")

    assert prune_models(layout) == []
    assert unreadable.is_file()


def test_a_reused_model_counts_as_newest_and_survives_pruning(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    reused, newer = save_model(layout, "old", 1000), save_model(layout, "new", 2000)
    monkeypatch.setenv(KEEP_ENV, "1")

    assert mark_model_used(layout, "cnn", "old") is True
    assert mark_model_used(layout, "cnn", "missing") is False
    assert not layout.model_file("cnn", "missing").exists()
    prune_models(layout)

    assert reused.is_file() and not newer.exists()


def test_stale_resume_states_go_and_fresh_ones_stay(layout: DataLayout) -> None:
    save_model(layout, "k0", time.time())
    stale, fresh = layout.resume_file("cnn", "killed-long-ago"), layout.resume_file("cnn", "training-now")
    for path in (stale, fresh):
        path.write_bytes(b"state")
    long_ago = time.time() - (RESUME_UNUSED_DAYS + 1) * 86400
    os.utime(stale, (long_ago, long_ago))

    assert prune_models(layout) == [stale]
    assert fresh.is_file() and layout.model_file("cnn", "k0").is_file()


def test_retention_forgets_the_ingest_records_of_the_versions_it_removes(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    fingerprints = []
    for seed in range(KEPT_VERSIONS + 1):
        fingerprints.append(publish_dataset(small_dataset(seed), layout).manifest["fingerprint"])
        record_dataset(layout, f"input-{seed}", fingerprints[-1])
        (layout.ingest_records / "foreign.json").write_text("not json")
        os.utime(layout.versions / fingerprints[-1][:16], (1000 + seed, 1000 + seed))

    # The newest version once failed the gate (set aside), then passed when ingested again: both folders exist.
    failed = layout.versions / (fingerprints[-1][:16] + FAILED_SUFFIX)
    shutil.copytree(layout.versions / fingerprints[-1][:16], failed)
    os.utime(failed, (1, 1))

    publish_dataset(small_dataset(KEPT_VERSIONS + 1), layout)

    remaining = sorted(path.name for path in layout.ingest_records.iterdir())
    assert not (layout.versions / fingerprints[0][:16]).exists()
    assert not (layout.versions / fingerprints[1][:16]).exists()
    assert not failed.exists()  # removed, but the record of the version ingested again stays
    assert remaining == sorted(["foreign.json", *(f"input-{seed}.json" for seed in range(2, KEPT_VERSIONS + 1))])
