"""Evaluate a trained model on the test split: accuracy, loss, confusion matrix, per-class metrics, predictions,
calibration (ECE before and after) and answers at the target error (`modeling.calibration`).

The metric functions are plain numpy so they can be checked by hand. About the loss: with the TensorFlow backend,
Keras's sparse categorical cross-entropy does not use a sigmoid or softmax head's outputs but the head's
pre-activation values (it reads the logits the activation cached). So for every model here, sigmoid heads
included, the loss Keras trains on and `model.evaluate` reports is softmax cross-entropy of the head's logits;
`evaluate_model` computes exactly that, from the logits of the model's ONNX file: scored by `serving.Engine`, the
engine `predict` uses, so the probabilities here are the ones users get, bit for bit. The loss is the
uncalibrated one (what Keras reports); confidences are calibrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnist_pipeline import defaults
from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.calibration import (
    Selective,
    expected_calibration_error,
    log_softmax,
    softmax,
    summarise_reliability,
    summarise_risk_coverage,
)
from mnist_pipeline.modeling.serving import Engine, open_engine


@dataclass(frozen=True)
class Evaluation:
    """Test-split results; accuracy is a fraction, confusion rows are true labels, columns predicted."""

    accuracy: float
    loss: float
    confusion: np.ndarray
    per_class: dict[str, list[float] | list[int]]
    predictions: pd.DataFrame
    calibration: dict[str, Any]
    selective: Selective
    risk_coverage: dict[str, list]

    @property
    def rows(self) -> int:
        """How many test images were scored."""
        return len(self.predictions)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts[i, j] = how many images of true class i were predicted as j."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator with 0/0 (and x/0) defined as 0.0."""
    safe = np.where(denominator == 0, 1, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def per_class_metrics(cm: np.ndarray) -> dict[str, list[float] | list[int]]:
    """Precision, recall, F1 and support per class from a confusion matrix (rows = true labels).

    A class never predicted has precision 0.0, a class absent from the labels recall 0.0, and F1 is 0.0 when
    precision + recall is 0: undefined ratios count as 0.0 rather than NaN, so JSON stays valid.
    """
    true_positive = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _ratio(true_positive, cm.sum(axis=0))
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.astype(int).tolist(),
    }


def evaluate_model(engine: Engine, test: Split, target_error: float = defaults.TARGET_ERROR) -> Evaluation:
    """Score a model's engine on `test`; loss matches `model.evaluate` for float32 models (see the module docstring).

    `confidence` in the predictions is the calibrated top class probability, as `predict` reports it (and
    `uncalibrated_confidence` the plain softmax of the logits: the CNN's own softmax output, and for the
    sigmoid-headed ANNs the distribution their training loss fitted). `selective` answers the set as a population
    at `target_error`, as batch-predict would.
    """
    logits = engine.logits(test.images)
    calibration = engine.calibration
    probabilities, log_probs = softmax(logits / calibration.temperature), log_softmax(logits)
    n_classes = log_probs.shape[1]
    labels = test.labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    rows = np.arange(len(labels))
    cm = confusion_matrix(labels, predicted, n_classes)
    confidence, uncalibrated = probabilities[rows, predicted], np.exp(log_probs[rows, predicted])
    correct = predicted == labels
    predictions = pd.DataFrame(
        {
            "row_id": rows.astype(np.int64),
            "label": labels,
            "predicted": predicted.astype(np.int64),
            "confidence": confidence,
            "uncalibrated_confidence": uncalibrated,
        }
    )
    threshold = calibration.threshold(target_error, confidence)
    return Evaluation(
        accuracy=float((predicted == labels).mean()) if len(labels) else 0.0,
        loss=float(-log_probs[rows, labels].mean()) if len(labels) else 0.0,
        confusion=cm,
        per_class=per_class_metrics(cm),
        predictions=predictions,
        calibration={
            "temperature": calibration.temperature,
            "ece_before": expected_calibration_error(uncalibrated, correct),
            "ece_after": expected_calibration_error(confidence, correct),
            "reliability_before": summarise_reliability(uncalibrated, correct),
            "reliability": summarise_reliability(confidence, correct),
        },
        selective=Selective.score(confidence, correct, threshold, target_error),
        risk_coverage=summarise_risk_coverage(confidence, correct),
    )


def evaluate_saved_model(
    layout: DataLayout, model: str, key: str, test_file: Path, test_limit: int | None
) -> Evaluation:
    """Score the saved model `key` on the first `test_limit` rows (all when None) of a test split file.

    The one way both a run's evaluation and a champion's re-scoring measure a model, so the two compare.
    """
    return evaluate_model(open_engine(layout, model, key), read_split(test_file).head(test_limit))
