"""Concurrent and interrupted ingests, the gate before publishing, retention and damaged files: real processes.

Each `mnist-pipeline` command here is a real process on small synthetic digits (no Prefect needed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.champion.registry import backup_path, record_decision
from mnist_pipeline.champion.retention import KEEP_ENV, prune_models
from mnist_pipeline.champion.rule import Candidate, PromotionPolicy, decide_promotion
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset, read_manifest
from mnist_pipeline.data.versions import FAILED_SUFFIX, KEPT_VERSIONS, current_version
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
    (layout.raw / "keras" / ".download-killed").write_bytes(b"part")
    (layout.models).mkdir()
    stale, fresh = layout.models / ".champions.json.old.tmp", layout.models / ".champions.json.new.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

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
    assert not (layout.raw / "keras" / ".download-killed").exists()
    assert not stale.exists() and fresh.exists()  # a temp file this young may belong to a live process


def small_dataset(seed: int) -> RawDataset:
    x_train, y_train = make_synthetic_digits(40, seed=seed, side=8)
    x_test, y_test = make_synthetic_digits(20, seed=seed + 100, side=8)
    return RawDataset(Split(x_train, y_train), Split(x_test, y_test), source="npz", origin=f"seed-{seed}")


def test_retention_spares_the_current_version_a_pinned_one_and_foreign_folders(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    pinned = publish_dataset(small_dataset(0), layout).manifest["fingerprint"]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from mnist_pipeline.data.layout import DataLayout\n"
            "from mnist_pipeline.data.versions import pin_version\n"
            "with pin_version(DataLayout(Path(sys.argv[1])), sys.argv[2]):\n"
            "    print('pinned', flush=True); sys.stdin.read()",
            str(layout.root),
            pinned,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "pinned\n"
    foreign = layout.versions / "0123456789abcdef"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"fingerprint": "0123456789abcdef"}')
    os.utime(foreign, (1, 1))
    newer = []
    for seed in range(1, KEPT_VERSIONS + 2):
        os.utime(layout.versions / pinned[:16], (1000 + seed, 1000 + seed))
        newer.append(publish_dataset(small_dataset(seed), layout).manifest["fingerprint"][:16])
        time.sleep(0.01)

    names = {path.name for path in layout.versions.iterdir()}
    assert current_version(layout) == newer[-1]
    assert {pinned[:16], foreign.name, *newer[-KEPT_VERSIONS:]} == names
    holder.communicate(input="", timeout=30)  # the run ends: its pin goes with its process
    publish_dataset(small_dataset(KEPT_VERSIONS + 5), layout)
    assert pinned[:16] not in {path.name for path in layout.versions.iterdir()}
    assert foreign.is_dir()


def make_candidate(run: str, path: Path) -> Candidate:
    return Candidate(path.stem, str(path), run, "f" * 64, 100, 0.9, (0.9,) * 10)  # model files are named by key


def test_a_truncated_registry_or_manifest_is_one_line_that_says_how_to_recover(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    registry = DataLayout(data_dir).models / "champions.json"
    challenger = make_candidate("run-1", tmp_path / "m.keras")
    record_decision(registry, decide_promotion("cnn", challenger, None, PromotionPolicy()), challenger, at="2026")
    registry.write_bytes(registry.read_bytes()[:40])

    damaged = run_cli("champion", "--data-dir", str(data_dir))
    assert damaged.returncode == 2
    assert damaged.stderr.count("\n") == 1 and "Traceback" not in damaged.stderr
    assert "truncated" in damaged.stderr and f"copy {backup_path(registry).name}" in damaged.stderr
    registry.write_bytes(backup_path(registry).read_bytes())  # the recovery the message names
    restored = run_cli("champion", "--data-dir", str(data_dir))
    assert restored.returncode == 0 and "run run-1" in restored.stdout

    layout = DataLayout(data_dir)
    publish_dataset(small_dataset(0), layout)
    layout.manifest.write_text("")
    invalid = run_cli("validate", "--data-dir", str(data_dir))
    assert invalid.returncode == 2 and invalid.stderr.count("\n") == 1
    assert "mnist-pipeline ingest --source" in invalid.stderr


def test_models_keep_every_champion_and_the_newest_per_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    (models / "cnn").mkdir(parents=True)
    files = []
    for number in range(5):
        path = models / "cnn" / f"key{number}.keras"
        path.write_bytes(b"model")
        path.with_name(path.name + ".json").write_text("{}")
        os.utime(path, (1000 + number, 1000 + number))
        files.append(path)
    champion = make_candidate("run-0", files[0])
    registry = models / "champions.json"
    record_decision(registry, decide_promotion("cnn", champion, None, PromotionPolicy()), champion, at="2026")
    monkeypatch.setenv(KEEP_ENV, "2")

    removed = prune_models(DataLayout(models.parent))

    assert sorted(removed) == files[1:3]
    assert sorted(models.joinpath("cnn").iterdir()) == sorted(
        [
            files[0],
            files[3],
            files[4],
            *(path.with_name(path.name + ".json") for path in (files[0], files[3], files[4])),
        ]
    )
