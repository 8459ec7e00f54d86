"""Measure training settings on real MNIST, to choose the profiles' settings (results: bench/RESULTS.md).

Runs the package's own train_model/evaluate_model, so what is timed is what the pipeline runs. Examples:
  bench_training.py --data-dir /tmp/train-data --profile default                # the profile as it stands
  bench_training.py --models cnn --epochs 1 --batch-size 128                     # one knob at a time
  bench_training.py --mode threads --threads 1                                   # three models at once
  bench_training.py --models cnn --epochs 30 --augment-shift 2 --validation-only  # a search step (no test split)
  bench_training.py --models ann_no_hidden --profile best --folds 5 --batch-size 32  # a search step, 5-fold CV
Prints one JSON object per model (and a total). Matmul peak and the CNN's share of it: bench_cnn_throughput.py.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.registry import model_names

if TYPE_CHECKING:
    from mnist_pipeline.modeling.profiles import TrainConfig

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
    parser.add_argument(
        "--folds",
        type=int,
        help="k-fold cross-validation on the train split instead (no validation split, no early stopping, no test "
        "split): every train image is scored once, far more than a validation split scores",
    )
    parser.add_argument("--fold-seed", type=int, default=7, help="seed of the fold assignment (not of training)")
    args = parser.parse_args()
    if args.folds is not None:
        refuse_with_folds(parser, args)
    return args


def refuse_with_folds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--folds decides the held-out data and trains one fold at a time: flags that say otherwise are errors."""
    if args.folds < 2:
        parser.error(f"--folds: expected at least 2, found {args.folds}")
    given = {
        "--mode threads": args.mode == "threads",
        "--validation-only": args.validation_only,
        "--validation-fraction": args.validation_fraction is not None,
        "--early-stopping-patience": args.early_stopping_patience is not None,
        "--no-early-stopping": args.no_early_stopping,
    }
    conflicting = [flag for flag, present in given.items() if present]
    if conflicting:
        parser.error(f"--folds: expected no {', '.join(conflicting)} (folds replace the validation split)")


def make_config(name: str, args: argparse.Namespace) -> TrainConfig:
    """The profile's config for `name` with this command's overrides, as the pipeline would resolve it."""
    from mnist_pipeline.modeling.profiles import resolve_config

    config = resolve_config(args.profile, name, args.epochs)
    changes = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    if args.no_early_stopping:
        changes["early_stopping_patience"] = None
    return replace(config, **changes)


def split_folds(train: Split, folds: int, seed: int) -> Iterator[tuple[Split, Split]]:
    """(fit, held) pairs from one seeded permutation of train: every image is held out exactly once."""
    order = np.random.default_rng(seed).permutation(train.rows)
    for held in np.array_split(order, folds):
        kept = np.setdiff1d(np.arange(train.rows), held)
        yield Split(train.images[kept], train.labels[kept]), Split(train.images[held], train.labels[held])


def run_cross_validation(name: str, args: argparse.Namespace, train: Split) -> dict[str, Any]:
    """Train on k-1 folds, score the held-out fold, k times; the test split is never read."""
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.model_files import to_engine
    from mnist_pipeline.modeling.training import train_model

    config = replace(make_config(name, args), validation_fraction=0.0, early_stopping_patience=None)
    accuracies, seconds = [], 0.0
    for fit, held in split_folds(train, args.folds, args.fold_seed):
        result = train_model(name, config, fit, seed=args.seed)
        accuracies.append(evaluate_model(to_engine(result.model), held).accuracy)
        seconds += result.seconds
    return {
        "model": name,
        "config": config.to_dict(),
        "folds": args.folds,
        "fold_seed": args.fold_seed,
        "seed": args.seed,
        "fold_accuracy": [round(value, 5) for value in accuracies],
        "cv_accuracy": round(float(np.mean(accuracies)), 5),
        "train_seconds": round(seconds, 2),
    }


def run_one(name: str, args: argparse.Namespace, train: Split, test: Split | None) -> dict[str, Any]:
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.model_files import to_engine
    from mnist_pipeline.modeling.training import train_model

    config = make_config(name, args)
    result = train_model(name, config, train, seed=args.seed)
    scores: dict[str, Any] = {}
    if test is not None:
        started = time.perf_counter()
        evaluation = evaluate_model(to_engine(result.model), test)
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
    no_test = args.validation_only or args.folds is not None
    test = None if no_test else read_split(args.data_dir / "parquet" / "test.parquet")
    names = args.models.split(",")
    started = time.perf_counter()
    if args.folds is not None:
        results = [run_cross_validation(name, args, train) for name in names]
    elif args.mode == "threads":
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(lambda name: run_one(name, args, train, test), names))
    else:
        results = [run_one(name, args, train, test) for name in names]
    for result in results:
        print(json.dumps(result))
    print(json.dumps({"total_wall_seconds": round(time.perf_counter() - started, 2), "mode": args.mode}))


if __name__ == "__main__":
    main()
