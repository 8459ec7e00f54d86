"""Scratch vs warm start on the same increment: wall time and accuracy on `test` and on `new` (bench/RESULTS.md).

The old champion is a model trained from scratch on the base training set (the data dir's current version). The
increment (`--increment`: an ImageFolder, .npz, IDX pair or Parquet that `add-data` takes, e.g. the folder
bench/other_writers.py writes) is prepared as `add-data` prepares it and split 80/20 by content hash as the gate
splits it; without `--increment`, a synthetic shifted increment is made from base training images (thicker, rotated
strokes). Then, on base train + the increment's train part, a model is trained from scratch with the profile and
the old champion is fine-tuned as `--warm-start` does; each is scored on `test` (MNIST's test split) and `new`
(the increment's test part). Examples:
  bench_warm_start.py --data-dir data --increment /tmp/other-writers
  bench_warm_start.py --data-dir data --models cnn,ann_hidden_100 --synthetic-rows 2000
Prints one JSON object per model and variant.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.store import read_split


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--increment", type=Path, help="labelled batch to add (default: a synthetic shifted one)")
    parser.add_argument("--synthetic-rows", type=int, default=2000, help="rows of the synthetic increment")
    parser.add_argument("--models", default="cnn")
    parser.add_argument("--profile", default=defaults.PROFILE)
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    parser.add_argument(
        "--lr-scales",
        default="1",
        help="comma-separated learning-rate factors to fine-tune with (1 = the profile's, what --warm-start uses)",
    )
    return parser.parse_args()


def make_shifted_increment(train: Split, rows: int, seed: int) -> Split:
    """Base training digits redrawn unlike MNIST: strokes thickened by a 3x3 maximum, rotated by 20-35 degrees
    either way; then centred MNIST-style as `add-data` would. Not new writers, but a shifted distribution."""
    from scipy import ndimage

    from mnist_pipeline.predict.preprocess import to_mnist_style_batch

    rng = np.random.default_rng(seed)
    chosen = rng.choice(train.rows, size=rows, replace=False)
    angles = rng.uniform(20, 35, size=rows) * rng.choice([-1, 1], size=rows)
    drawn = [
        ndimage.rotate(ndimage.maximum_filter(train.images[i], size=3), angle, reshape=False, order=1)
        for i, angle in zip(chosen, angles, strict=True)
    ]
    images, problems = to_mnist_style_batch(np.stack(drawn))
    kept = np.setdiff1d(np.arange(rows), list(problems))
    return Split(images=images[kept], labels=train.labels[chosen][kept])


def read_increment(path: Path) -> Split:
    from mnist_pipeline.increments.sources import read_labelled_batch

    batch = read_labelled_batch(path)
    if batch.problems:
        raise SystemExit(f"{path}: {len(batch.problems)} unreadable input(s), e.g. {batch.problems[0]}")
    return Split(images=batch.images, labels=batch.labels.astype(np.int64))


def split_by_hash(increment: Split) -> tuple[Split, Split]:
    """(train part, test part) as the gate assigns them: by each image's content hash."""
    from mnist_pipeline.increments.hashes import hash_images, is_test_part

    test = is_test_part(hash_images(increment.images))
    return (
        Split(images=increment.images[~test], labels=increment.labels[~test]),
        Split(images=increment.images[test], labels=increment.labels[test]),
    )


def score(model: Any, sets: dict[str, Split]) -> dict[str, float]:
    from mnist_pipeline.modeling.evaluation import evaluate_model
    from mnist_pipeline.modeling.model_files import to_engine

    engine = to_engine(model)
    return {f"{name}_accuracy": round(evaluate_model(engine, split).accuracy, 4) for name, split in sets.items()}


def describe(name: str, variant: str, result: Any, sets: dict[str, Split], **extra: Any) -> dict[str, Any]:
    return {
        "model": name,
        "variant": variant,
        **extra,
        **score(result.model, sets),
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 1),
    }


def main() -> None:
    args = parse_args()
    import keras

    from mnist_pipeline.modeling.profiles import fine_tuning_config, resolve_config
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(None, deterministic=True)
    base = read_split(args.data_dir / "parquet" / "train.parquet")
    test = read_split(args.data_dir / "parquet" / "test.parquet")
    if args.increment is not None:
        increment, origin = read_increment(args.increment), str(args.increment)
    else:
        increment, origin = make_shifted_increment(base, args.synthetic_rows, args.seed), "synthetic shifted"
    added, new = split_by_hash(increment)
    grown = Split(np.concatenate([base.images, added.images]), np.concatenate([base.labels, added.labels]))
    sets = {"test": test, "new": new}
    print(json.dumps({"increment": origin, "rows": increment.rows, "train_part": added.rows, "new": new.rows}))
    for name in args.models.split(","):
        config = resolve_config(args.profile, name)
        champion = train_model(name, config, base, seed=args.seed)
        print(json.dumps(describe(name, "old champion (base train)", champion, sets)))
        scratch = train_model(name, config, grown, seed=args.seed)
        print(json.dumps(describe(name, "scratch", scratch, sets)))
        with tempfile.TemporaryDirectory(prefix="bench-warm-start-") as folder:
            saved = Path(folder) / f"{name}.keras"
            keras.saving.save_model(champion.model, saved)
            for factor in (float(value) for value in args.lr_scales.split(",")):
                tuned = fine_tuning_config(config)
                tuned = replace(tuned, learning_rate=tuned.learning_rate * factor)
                warm = train_model(name, tuned, grown, seed=args.seed, warm_start=saved)
                print(json.dumps(describe(name, "warm start", warm, sets, lr_scale=factor)))


if __name__ == "__main__":
    main()
