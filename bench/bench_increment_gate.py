"""Cost of the increment gate for one batch, against a short and a long history.

A synthetic data dir per history size N: a current dataset version of 60 000 + N train and 10 000 test random 28x28
images (the train split holds the history, as a grown version does) and an `increments/index.parquet` of N
accepted images (random content hashes in increments of 1 000, parts by the 80/20 rule). One batch of 1 000 new
images is landed, then one gate check is timed: `check_batch` (read the index, hash the test split, count the train
labels, build the profile, run the Great Expectations suite) and `measure_drift` (the reference sample, the drift
tests, the picture; no champion here), and so is accepting it (the index rewrite). Each size is measured in its
own process (and built in another), so its peak RSS is the gate's own; Great Expectations and the drift step run
once before the clock.

    .venv/bin/python bench/bench_increment_gate.py [--history 60000 1000000] [--batch 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import write_version
from mnist_pipeline.data.versions import ingest_lock, make_current
from mnist_pipeline.increments.gate import check_batch, measure_drift
from mnist_pipeline.increments.hashes import (
    INDEX_SCHEMA,
    SHA_DTYPE,
    as_sha_array,
    is_test_part,
    list_increments,
    read_index,
)
from mnist_pipeline.increments.inbox import land_batch, read_pending
from mnist_pipeline.increments.sources import LabelledBatch
from mnist_pipeline.increments.store import accept_batch

INCREMENT_ROWS = 1000


def random_images(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(rows, 28, 28), dtype=np.uint8)


def build_history(layout: DataLayout, rows: int) -> list[str]:
    """An index of `rows` accepted images with random hashes, as appends of 1 000-image increments leave it;
    returns the increments' ids."""
    shas = np.frombuffer(np.random.default_rng(1).bytes(16 * rows), dtype=SHA_DTYPE)
    ids = np.repeat([f"b-20261201T{index:06d}-bench" for index in range(-(-rows // INCREMENT_ROWS))], INCREMENT_ROWS)
    table = pa.table(
        {
            "sha": as_sha_array(shas),
            "part": pa.array(np.where(is_test_part(shas), "test", "train").tolist()),
            "increment": pa.array(ids[:rows].tolist()),
        },
        schema=INDEX_SCHEMA,
    )
    layout.increments.mkdir(parents=True)
    pq.write_table(table, layout.increments_index, compression="zstd")
    return list_increments(table)


def make_batch(rows: int) -> LabelledBatch:
    """`rows` MNIST-style images (black border, centred ink), none of them in the history or the base test split."""
    images = np.zeros((rows, 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = random_images(rows, seed=3)[:, 4:24, 4:24] | 1
    return LabelledBatch(
        images=images,
        labels=np.arange(rows, dtype=np.int64) % 10,
        names=[f"row {index}" for index in range(rows)],
        raw_height=np.full(rows, 28, np.int32),
        raw_width=np.full(rows, 28, np.int32),
        raw_min=np.zeros(rows),
        raw_max=np.full(rows, 255.0),
        empty=np.zeros(rows, dtype=bool),
        problems=[],
    )


def build(layout: DataLayout, history: int, batch_rows: int) -> str:
    """The synthetic data dir for one history size, with one batch landed; returns the batch id."""
    train_rows = 60_000 + history
    base = RawDataset(
        Split(random_images(train_rows, 1), np.arange(train_rows, dtype=np.int64) % 10),
        Split(random_images(10_000, 2), np.arange(10_000, dtype=np.int64) % 10),
        "npz",
        "bench",
    )
    increments = build_history(layout, history)
    with ingest_lock(layout):  # a grown version: it holds every increment of the index
        version = write_version(base, layout, {"base": None, "parent": None, "increments": increments})
        make_current(layout, version.manifest["fingerprint"])
    return land_batch(layout, make_batch(batch_rows), "bench", None)


def measure(layout: DataLayout, batch_id: str, repeats: int) -> dict[str, float]:
    """Seconds and peak memory of checking one batch (blocking checks and drift) against the data dir's history,
    and of accepting it."""
    batch = read_pending(layout, batch_id)
    started = time.perf_counter()
    checks = check_batch(layout, layout, batch, 10)  # the first imports Great Expectations
    first_seconds = time.perf_counter() - started
    assert all(check.success for check in checks), [check.message for check in checks if not check.success]
    measure_drift(layout, layout, batch)  # the first imports scipy and matplotlib
    times, drift_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        check_batch(layout, layout, batch, 10)
        checked = time.perf_counter()
        measure_drift(layout, layout, batch)
        times.append(time.perf_counter() - started)
        drift_times.append(time.perf_counter() - checked)
    pool = pa.default_memory_pool()
    tracemalloc.start()  # a separate run: tracing slows Python down several times
    check_batch(layout, layout, batch, 10)
    measure_drift(layout, layout, batch)
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    started = time.perf_counter()
    accept_batch(layout, batch, checks, None)
    accept_seconds = time.perf_counter() - started
    return {
        "history": len(read_index(layout, ("part",))) - len(batch.names),
        "train_mb": layout.split_file("train").stat().st_size / 1e6,
        "first_check_seconds": first_seconds,
        "check_seconds_median": statistics.median(times),
        "check_seconds_max": max(times),
        "drift_seconds_median": statistics.median(drift_times),
        "accept_seconds": accept_seconds,
        "python_peak_mb": python_peak / 1e6,
        "arrow_peak_mb": pool.max_memory() / 1e6,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "index_mb": layout.increments_index.stat().st_size / 1e6,
    }


def run_child(*args: str) -> str:
    command = [sys.executable, __file__, *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, nargs="+", default=[60_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # a child process: build one data dir
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process: measure one data dir
    parser.add_argument("--batch-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(build(DataLayout(args.build), args.history[0], args.batch))
        return 0
    if args.one:
        print(json.dumps(measure(DataLayout(args.one), args.batch_id, args.repeats)))
        return 0
    print(
        "| history (accepted images) | train split MB | first blocking checks s (GX import) "
        "| check + drift: median s (max) | of which drift: median s | accept s | peak Python MB | peak Arrow MB "
        "| peak RSS MB | index MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for history in args.history:
        with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
            batch_id = run_child("--build", tmp, "--history", str(history), "--batch", str(args.batch))
            row = json.loads(run_child("--one", tmp, "--batch-id", batch_id, "--repeats", str(args.repeats)))
        print(
            f"| {row['history']:,} | {row['train_mb']:.0f} | {row['first_check_seconds']:.2f} | "
            f"{row['check_seconds_median']:.2f} ({row['check_seconds_max']:.2f}) | {row['drift_seconds_median']:.2f} | "
            f"{row['accept_seconds']:.2f} | {row['python_peak_mb']:.0f} | {row['arrow_peak_mb']:.0f} | "
            f"{row['process_peak_rss_mb']:.0f} | {row['index_mb']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
