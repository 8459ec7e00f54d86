"""Exact duplicate images, within each split and between train and test: reported, never a failure.

MNIST itself is not duplicate-free; leakage from train into test is worth seeing, not blocking. Images are
compared by the profile's 64-bit BLAKE2b hash (collisions are negligible at this scale).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mnist_pipeline.validation.messages import to_json_value

EXAMPLES = 3


def find_duplicates(profiles: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Counts and a few example row ids of repeated images per split and of test images also in train."""
    images = {
        split: profile.loc[~profile["image_is_null"], ["row_id", "image_hash"]] for split, profile in profiles.items()
    }
    report: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    for split, frame in images.items():
        repeated = frame[frame["image_hash"].duplicated(keep=False)]
        groups = repeated.groupby("image_hash", sort=False)["row_id"].agg(list)
        report[f"{split}_duplicate_rows"] = int(frame["image_hash"].duplicated().sum())
        report[f"{split}_repeated_images"] = len(groups)
        examples[split] = [to_json_value(ids) for ids in groups.head(EXAMPLES)]
    if "train" in images and "test" in images:
        train, test = images["train"], images["test"]
        shared = test[np.isin(test["image_hash"].to_numpy(), train["image_hash"].to_numpy())]
        first_in_train = train.drop_duplicates("image_hash").set_index("image_hash")["row_id"]
        report["test_rows_in_train"] = len(shared)
        report["train_test_shared_images"] = int(shared["image_hash"].nunique())
        examples["train_test"] = [
            {"test_row_id": to_json_value(row_id), "train_row_id": to_json_value(first_in_train[image_hash])}
            for row_id, image_hash in shared[["row_id", "image_hash"]].head(EXAMPLES).itertuples(index=False)
        ]
    report["examples"] = examples
    return report
