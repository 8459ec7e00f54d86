"""Learning curve on another population: the CNN's accuracy after 100 / 200 / 500 / 1 000 labels (bench/RESULTS.md).

A population is a labelled folder that `add-data` reads (e.g. the UCI optdigits writers that bench/other_writers.py
writes). The old champion is the CNN trained on the data dir's base train split with the default profile. Its
calibrated confidences put the population in the review queue's order (`review.sampling.order_for_review`: least
sure first, one audit image in ten); `random` is a seeded shuffle. For each order and count, the first N images are
the labels a reviewer gives; the gate keeps the 80 % of them whose content hash says train (`increments.hashes`),
and a CNN is trained anew exactly as a retrain does (`training.train_model` with the rows marked as increment rows,
so the profile's `increment_share` weighs them). Each model is scored on the population's images that were not
labelled, and on MNIST test. `--shares` adds runs with other increment shares (0: unweighted) at `--share-count`.
`--warm-start` fine-tunes the champion instead (`profiles.fine_tuning_config`), as the retrain that accepted
increments trigger does.

    .venv/bin/python bench/other_writers.py --out /tmp/other-writers
    .venv/bin/python bench/bench_learning_curve.py --population /tmp/other-writers
Prints one JSON object per model, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_warm_start import read_increment, score

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.store import read_split
from mnist_pipeline.increments.hashes import hash_images, is_test_part
from mnist_pipeline.review.sampling import order_for_review


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--population", type=Path, required=True, help="labelled folder, .npz, IDX pair or Parquet")
    parser.add_argument("--counts", default="100,200,500,1000", help="labels given, comma-separated")
    parser.add_argument("--orders", default="queue,random")
    parser.add_argument("--shares", default="", help="extra increment shares to compare at --share-count")
    parser.add_argument("--share-count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    parser.add_argument("--warm-start", action="store_true", help="fine-tune the champion instead of training anew")
    return parser.parse_args()


def rank(population: Split, champion: Any, train: Split, config: Any, seed: int, order: str) -> np.ndarray:
    """The population's row numbers in the order a reviewer would label them."""
    if order == "random":
        return np.random.default_rng(seed).permutation(population.rows)
    from mnist_pipeline.modeling.calibration import fit_calibration, held_out_rows, softmax
    from mnist_pipeline.modeling.model_files import to_engine

    engine = to_engine(champion)
    held = held_out_rows(train.rows, config.validation_fraction, seed)
    calibration = fit_calibration(engine.logits(train.images[held]), train.labels[held])
    confidence = softmax(engine.logits(population.images) / calibration.temperature).max(axis=1)
    ids = [digest.hex() for digest in hash_images(population.images)]
    where = {item: row for row, item in enumerate(ids)}
    return np.array([where[item] for item in order_for_review(dict(zip(ids, confidence.tolist(), strict=True)))])


def main() -> None:
    args = parse_args()
    from mnist_pipeline.modeling.model_files import save_model
    from mnist_pipeline.modeling.profiles import fine_tuning_config, resolve_config
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(None, deterministic=True)
    base = read_split(args.data_dir / "parquet" / "train.parquet")
    test = read_split(args.data_dir / "parquet" / "test.parquet")
    population = read_increment(args.population)
    config = resolve_config("default", "cnn")
    champion = train_model("cnn", config, base, seed=args.seed)
    start = Path(tempfile.mkdtemp(prefix="learning-curve-")) / "champion.keras" if args.warm_start else None
    if start is not None:
        save_model(champion.model, start)
    rows: list[dict[str, Any]] = [
        {
            "order": "-",
            "labels": 0,
            "share": config.increment_share,
            **score(champion.model, {"rest": population, "test": test}),
        }
    ]
    print(json.dumps(rows[0]), flush=True)
    runs = [
        (order, int(count), config.increment_share)
        for order in args.orders.split(",")
        for count in args.counts.split(",")
    ]
    runs += [("queue", args.share_count, float(share)) for share in args.shares.split(",") if share]
    for order, count, share in runs:
        ranked = rank(population, champion.model, base, config, args.seed, order)
        labelled, rest = ranked[:count], np.sort(ranked[count:])
        kept = labelled[~is_test_part(hash_images(population.images[labelled]))]
        grown = Split(
            np.concatenate([base.images, population.images[kept]]),
            np.concatenate([base.labels, population.labels[kept]]),
        )
        run_config = replace(fine_tuning_config(config) if start else config, increment_share=share)
        trained = train_model("cnn", run_config, grown, seed=args.seed, increment_rows=len(kept), warm_start=start)
        sets = {"rest": Split(population.images[rest], population.labels[rest]), "test": test}
        row = {"order": order, "labels": count, "trained_on": len(kept), "share": share, **score(trained.model, sets)}
        row["start"] = "fine-tuned" if start else "anew"
        row["train_seconds"] = round(trained.seconds, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| order | labels | start | trained on | increment share | other images | MNIST test |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['order']} | {row['labels']} | {row.get('start', '-')} | {row.get('trained_on', 0)} | "
            f"{row['share']} | "
            f"{100 * row['rest_accuracy']:.2f} % | {100 * row['test_accuracy']:.2f} % |"
        )


if __name__ == "__main__":
    main()
