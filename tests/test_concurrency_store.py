"""Concurrent and interrupted ingests, the gate before publishing, garbage collection and damaged files: real
processes.

Each `mnist-pipeline` command here is a real process on small synthetic digits (no Prefect needed); what only
sets the stage for a race runs in this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mnist_pipeline.champion.registry import backup_path, record_decision
from mnist_pipeline.champion.rule import Candidate, PromotionPolicy, decide_promotion
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset, read_manifest
from mnist_pipeline.data.versions import FAILED_SUFFIX, current_version
from mnist_pipeline.increments.versions import ingest_and_publish_grown
from tests.support import make_synthetic_digits

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))


def write_digits(path: Path, seed: int, bad_label: bool = False) -> Path:
    """A valid small MNIST-like .npz (600 train / 200 test); `bad_label` puts one label 10 into the test split."""
    x_train, y_train = make_synthetic_digits(600, seed=seed)
    x_test, y_test = make_synthetic_digits(200, seed=seed + 100)
    if bad_label:
        y_test[3] = 10
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def start_ingest(source: Path, data_dir: Path) -> subprocess.Popen[str]:
    command = [CLI, "ingest", "--source", f"npz:{source}", "--data-dir", str(data_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, check=False)


def fingerprint_in(stdout: str) -> str:
    match = re.search(r"fingerprint ([0-9a-f]{16})\)", stdout)
    assert match, stdout
    return match.group(1)


def test_concurrent_ingests_of_the_same_and_of_different_content_all_succeed(tmp_path: Path) -> None:
    first, second = write_digits(tmp_path / "a.npz", seed=1), write_digits(tmp_path / "b.npz", seed=2)
    data_dir = tmp_path / "data"
    processes = [start_ingest(source, data_dir) for source in (first, first, second)]
    outputs = [process.communicate(timeout=300) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "OSError" not in stderr and "Traceback" not in stderr
    versions = [fingerprint_in(stdout) for stdout, _ in outputs]
    assert versions[0] == versions[1] != versions[2]
    states = sorted(stdout.split(":")[0] for stdout, _ in outputs[:2])
    assert states == ["unchanged", "written"]  # the second ingest of one content waited, then reused it
    layout = DataLayout(data_dir)
    assert current_version(layout) in versions
    for version in set(versions):
        assert (layout.versions / version / "train.parquet").is_file()
    assert not list(layout.versions.glob(".staging-*"))


def test_a_failing_dataset_ingested_over_a_good_one_is_set_aside_and_leftovers_are_cleaned(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    layout = DataLayout(data_dir)
    good_version = publish_dataset(small_dataset(1), layout).manifest["fingerprint"][:16]
    # What killed processes leave behind: a staging folder, a download, an old temp file; and a live temp file.
    (layout.versions / ".staging-killed").mkdir()
    (layout.versions / ".staging-killed" / "train.parquet").write_bytes(b"half")
    (layout.raw / "keras").mkdir(parents=True)
    (layout.raw / "keras" / ".mnist.npz.killed.tmp").write_bytes(b"part")
    (layout.models).mkdir()
    stale, fresh = layout.models / ".champions.json.old.tmp", layout.models / ".champions.json.new.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    landing, live_landing = layout.root / "inbox" / ".staging-killed", layout.root / "inbox" / ".staging-live"
    for folder in (landing, live_landing):
        folder.mkdir(parents=True)
        (folder / "batch.parquet").write_bytes(b"half")
    os.utime(landing, (time.time() - 3600, time.time() - 3600))

    bad = run_cli(
        "ingest",
        "--source",
        f"npz:{write_digits(tmp_path / 'bad.npz', seed=1, bad_label=True)}",
        "--data-dir",
        str(data_dir),
    )

    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "test: label 10 found in 1 row (row id 3); expected values in 0..9" in bad.stderr
    assert bad.stdout.startswith("rejected: ")
    assert current_version(layout) == good_version
    assert read_manifest(layout)["origin"] == "seed-1"
    assert len(list(layout.versions.glob(f"*{FAILED_SUFFIX}"))) == 1
    assert not (layout.versions / ".staging-killed").exists()
    assert not (layout.raw / "keras" / ".mnist.npz.killed.tmp").exists()
    assert not stale.exists() and fresh.exists()  # a temp file this young may belong to a live process
    assert not landing.exists() and live_landing.exists()  # likewise a batch add-data may be landing now


def small_dataset(seed: int) -> RawDataset:
    x_train, y_train = make_synthetic_digits(40, seed=seed, side=8)
    x_test, y_test = make_synthetic_digits(20, seed=seed + 100, side=8)
    return RawDataset(Split(x_train, y_train), Split(x_test, y_test), source="npz", origin=f"seed-{seed}")


def age_versions(layout: DataLayout) -> None:
    """Make every dataset version look last used a month ago (the default grace period is a week)."""
    month_ago = time.time() - 30 * 86400
    for folder in layout.versions.iterdir():
        for path in (*folder.iterdir(), folder):
            os.utime(path, (month_ago, month_ago))


def test_ingests_and_garbage_collections_at_the_same_time_lose_nothing(tmp_path: Path) -> None:
    """Ingests of versions a collection finds old, side by side with collections: each ingest either marks its
    version used before a collection looks, or writes it anew after one removed it; none fails or loses its data."""
    sources = [write_digits(tmp_path / f"{seed}.npz", seed=seed) for seed in (1, 2, 3)]
    data_dir = tmp_path / "data"
    layout = DataLayout(data_dir)
    # The versions to race over, ingested one after another in this process (what `mnist-pipeline ingest` calls):
    # only the racing ingests and collections below need to be processes of their own.
    for source in sources:
        _, report = ingest_and_publish_grown(f"npz:{source}", layout)
        assert report.success, report.summary_lines()
    unused = current_version(layout)  # the last one published; the racing ingests make another current
    age_versions(layout)

    gc = [CLI, "gc", "--data-dir", str(data_dir)]
    processes = [start_ingest(source, data_dir) for source in sources[:2]]
    processes += [subprocess.Popen(gc, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    ingested = [fingerprint_in(stdout) for stdout, _ in outputs[:2]]
    assert current_version(layout) in ingested
    for version in ingested:
        manifest = read_manifest(layout.pin(version))
        assert manifest["fingerprint"].startswith(version) and (layout.versions / version / "train.parquet").is_file()
    assert run_cli(*gc[1:]).returncode == 0
    assert not (layout.versions / unused).exists()  # old, unused and no longer current


def make_candidate(run: str, path: Path) -> Candidate:
    return Candidate(path.stem, str(path), run, "f" * 64, 100, 0.9, (0.9,) * 10)  # model files are named by key


def test_a_truncated_registry_or_manifest_is_one_line_that_says_how_to_recover(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    registry = DataLayout(data_dir).models / "champions.json"
    first, second = make_candidate("run-1", tmp_path / "m1.keras"), make_candidate("run-2", tmp_path / "m2.keras")
    record_decision(registry, decide_promotion("cnn", first, None, PromotionPolicy()), first, at="2026")
    record_decision(registry, decide_promotion("cnn", second, None, PromotionPolicy()), second, at="2026")
    registry.write_bytes(registry.read_bytes()[:40])

    damaged = run_cli("champion", "--data-dir", str(data_dir))
    assert damaged.returncode == 2
    assert damaged.stderr.count("\n") == 1 and "Traceback" not in damaged.stderr
    assert "truncated" in damaged.stderr and f"copy {backup_path(registry).name}" in damaged.stderr
    registry.write_bytes(backup_path(registry).read_bytes())  # the recovery the message names
    restored = run_cli("champion", "--data-dir", str(data_dir))  # the registry before its last update
    assert restored.returncode == 0 and "run run-1" in restored.stdout

    layout = DataLayout(data_dir)
    publish_dataset(small_dataset(0), layout)
    layout.manifest.write_text("")
    invalid = run_cli("validate", "--data-dir", str(data_dir))
    assert invalid.returncode == 2 and invalid.stderr.count("\n") == 1
    assert "mnist-pipeline ingest --source" in invalid.stderr
