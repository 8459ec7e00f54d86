"""Pick the misclassified test digits worth showing: the most confident mistakes first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnist_pipeline.errors import DataFormatError

PREDICTION_COLUMNS = ("row_id", "label", "predicted", "confidence")


@dataclass(frozen=True)
class Mistake:
    """One wrongly predicted test image; `confidence` is the probability the model gave its (wrong) answer."""

    row_id: int
    image: np.ndarray
    label: int
    predicted: int
    confidence: float


def select_mistakes(predictions: pd.DataFrame, images: np.ndarray, limit: int) -> list[Mistake]:
    """The `limit` most confident wrong predictions: confident errors say most about a model (ties by row id)."""
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise DataFormatError(
            f"predictions: expected columns {', '.join(PREDICTION_COLUMNS)}, found no {', '.join(missing)}"
        )
    if limit <= 0:
        return []
    wrong = predictions[predictions["label"] != predictions["predicted"]]
    chosen = wrong.sort_values(["confidence", "row_id"], ascending=[False, True], kind="stable").head(limit)
    if len(chosen) and (chosen["row_id"].min() < 0 or chosen["row_id"].max() >= len(images)):
        raise DataFormatError(
            f"predictions: expected row ids below {len(images)} (the test images), "
            f"found {int(chosen['row_id'].min())}..{int(chosen['row_id'].max())}"
        )
    return [
        Mistake(
            row_id=int(row.row_id),
            image=images[int(row.row_id)],
            label=int(row.label),
            predicted=int(row.predicted),
            confidence=float(row.confidence),
        )
        for row in chosen.itertuples(index=False)
    ]
