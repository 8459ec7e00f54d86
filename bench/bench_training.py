"""Measure training settings on real MNIST, to choose the profiles' settings (results: bench/RESULTS.md).

Runs the package's own train_model/evaluate_model, so what is timed is what the pipeline runs. Examples:
  bench_training.py --data-dir /tmp/train-data --profile default                # the profile as it stands
  bench_training.py --models cnn --epochs 1 --batch-size 128                     # one knob at a time
  bench_training.py --mode threads --threads 1                                   # three models at once
  bench_training.py --models cnn --epochs 30 --augment-shift 2 --validation-only  # a search step (no test split)
Prints one JSON object per model (and a total). Matmul peak and the CNN's share of it: bench_cnn_throughput.py.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.registry import model_names

OVERRIDES = {
    "batch_size": int,
    "learning_rate": float,
    "lr_schedule": str,
    "warmup_epochs": float,
    "validation_fraction": float,
    "early_stopping_patience": int,
    "precision": str,
    "augment_shift": float,
    "augment_rotation": float,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--profile", default=defaults.PROFILE)
    parser.add_argument("--epochs", type=int)
    for name, kind in OVERRIDES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind)
    parser.add_argument("--no-early-stopping", action="store_true")
    parser.add_argument("--threads", type=int, help="TF intra- and inter-op threads (default: TF's choice)")
    parser.add_argument("--nondeterministic", action="store_true", help="leave TF op determinism off")
    parser.add_argument("--mode", choices=("sequential", "threads"), default="sequential")
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    parser.add_argument(
        "--validation-only", action="store_true", help="report validation accuracy only (hyper-parameter search)"
    )
    return parser.parse_args()


def run_one(name: str, args: argparse.Namespace, train: Split, test: Split) -> dict[str, Any]:
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.profiles import resolve_config
    from mnist_pipeline.modeling.training import train_model

    config = resolve_config(args.profile, name, args.epochs)
    changes = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    if args.no_early_stopping:
        changes["early_stopping_patience"] = None
    config = replace(config, **changes)
    result = train_model(name, config, train, seed=args.seed)
    scores: dict[str, Any] = {}
    if not args.validation_only:
        started = time.perf_counter()
        evaluation = evaluate_model(result.model, test)
        scores = {
            "test_accuracy": round(evaluation.accuracy, 4),
            "test_loss": round(evaluation.loss, 4),
            "eval_seconds": round(time.perf_counter() - started, 2),
        }
    return {
        "model": name,
        "config": config.to_dict(),
        "threads": args.threads,
        "mode": args.mode,
        **scores,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        "epoch_seconds": result.epoch_seconds,
        "val_accuracy": [round(v, 4) for v in result.history.get("val_accuracy", [])],
    }


def main() -> None:
    args = parse_args()
    from mnist_pipeline.modeling.training import configure_tensorflow

    configure_tensorflow(args.threads, deterministic=not args.nondeterministic)
    train = read_split(args.data_dir / "parquet" / "train.parquet")
    test = read_split(args.data_dir / "parquet" / "test.parquet")
    names = args.models.split(",")
    started = time.perf_counter()
    if args.mode == "threads":
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(lambda name: run_one(name, args, train, test), names))
    else:
        results = [run_one(name, args, train, test) for name in names]
    for result in results:
        print(json.dumps(result))
    print(json.dumps({"total_wall_seconds": round(time.perf_counter() - started, 2), "mode": args.mode}))


if __name__ == "__main__":
    main()
