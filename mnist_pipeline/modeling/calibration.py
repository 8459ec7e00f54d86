"""Confidence that means what it says, and answers that say "not sure": temperature scaling, ECE, abstention.

Calibration (Guo et al. 2017, temperature scaling): a model's logits are divided by one number T, fitted by
likelihood on held-out images (the validation split training held out, never `test`), so that its top
probability matches how often it is right. ECE (15 equal-width bins) measures the gap. The fit is saved beside
the model's ONNX file (`<key>.calibration.json`) and applied by the engine, so evaluation, `predict`, the app and
batch-predict all report the same calibrated probabilities.

Abstention: with calibrated confidences, the mean of 1 - confidence over the answered images is an estimate of
the error among them. An answer is given while that estimate, taken over the most confident images first, stays
at or under the target error. For a single image the held-out images stand in for its population. A call with at
least MIN_POPULATION images is a population of its own, and the stricter of the two thresholds holds: digits unlike
the training data put more of their mass at lower confidence, so their threshold rises and fewer are answered
(docs/predict.md; measurements in bench/RESULTS.md, "Calibration and abstention").
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import write_json_atomic

ECE_BINS = 15
# A call with this many images or more is judged as a population too (see the module docstring).
MIN_POPULATION = 50
# Above every confidence: the threshold of a population where no answer meets the target.
ANSWER_NONE = float(np.nextafter(1.0, 2.0))
# The stated bound on the error at a threshold: one-sided Clopper-Pearson at this confidence, shared out over the
# ~log2(n) thresholds a choice on n images can be told apart by (the union bound of Geifman and El-Yaniv's SGR).
BOUND_CONFIDENCE = 0.95


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, in numpy: importing scipy.special would slow `predict`'s start-up."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def held_out_rows(rows: int, fraction: float, seed: int) -> np.ndarray:
    """The row numbers training held out as its validation split (`training._split_validation`, same seeded
    permutation): the images a model never trained on; none for a profile without a validation split."""
    if fraction == 0.0 or rows < 2:
        return np.zeros(0, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[: max(1, round(rows * fraction))])


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of softmax(logits / T) on `labels`."""
    from scipy.optimize import minimize_scalar  # fitting only: `predict` need not import it

    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[rows, labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the share-weighted mean |accuracy - mean confidence| over `bins` equal-width confidence bins."""
    if not len(confidence):
        return 0.0
    which = np.minimum((np.asarray(confidence) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.bincount(which, weights=np.asarray(correct, dtype=np.float64) - confidence, minlength=bins)
    return float(np.abs(gap[counts > 0]).sum() / len(confidence))


def summarise_reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> dict[str, list]:
    """The reliability diagram's points: per non-empty confidence bin, mean confidence, accuracy and count."""
    which = np.minimum((np.asarray(confidence) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    filled = counts > 0
    mean = np.bincount(which, weights=confidence, minlength=bins)[filled] / counts[filled]
    right = np.bincount(which, weights=np.asarray(correct, dtype=np.float64), minlength=bins)[filled] / counts[filled]
    return {
        "confidence": np.round(mean, 5).tolist(),
        "accuracy": np.round(right, 5).tolist(),
        "count": counts[filled].tolist(),
    }


def summarise_risk_coverage(confidence: np.ndarray, correct: np.ndarray, points: int = 40) -> dict[str, list]:
    """The risk-coverage curve: the error among the most confident images, at `points` coverages up to all."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    if not len(order):
        return {"coverage": [], "error": []}
    errors = np.cumsum(~np.asarray(correct, dtype=bool)[order])
    taken = np.unique(np.linspace(1, len(order), min(points, len(order))).round().astype(np.int64))
    return {
        "coverage": np.round(taken / len(order), 5).tolist(),
        "error": np.round(errors[taken - 1] / taken, 5).tolist(),
    }


def estimate_threshold(confidence: np.ndarray, target_error: float) -> float:
    """The lowest confidence t such that the mean of 1 - c over the images with c >= t is at most the target;
    ANSWER_NONE when not even the most confident image meets it."""
    ranked = np.sort(np.asarray(confidence, dtype=np.float64))[::-1]
    estimate = np.cumsum(1.0 - ranked) / np.arange(1, len(ranked) + 1)
    meets = np.flatnonzero(estimate <= target_error)
    return float(ranked[meets[-1]]) if len(meets) else ANSWER_NONE


def bound_error(errors: int, answered: int, choices: int = 1, confidence: float = BOUND_CONFIDENCE) -> float:
    """The one-sided Clopper-Pearson upper bound on an error rate seen as `errors` in `answered` (1.0 with none),
    at `confidence` shared by `choices` thresholds that could have been picked."""
    from scipy.stats import beta  # scoring only: scipy.stats costs `predict` ~0.4 s to import

    if answered == 0 or errors >= answered:
        return 1.0
    return float(beta.ppf(1 - (1 - confidence) / choices, errors + 1, answered - errors))


@dataclass(frozen=True)
class Calibration:
    """A model's fitted temperature and its held-out images' calibrated confidences (highest first), the
    population a single image is judged against; ECE on those images before and after. No held-out images
    (a profile without a validation split): T = 1 and each image is judged alone."""

    temperature: float
    held_out_rows: int
    ece_before: float | None
    ece_after: float | None
    held_out_confidence: tuple[float, ...]

    def threshold(self, target_error: float, batch_confidence: np.ndarray | None = None) -> float:
        """The confidence under which an answer is withheld: the held-out images' threshold, raised to the batch's
        own when the batch is a population (MIN_POPULATION images or more)."""
        held_out = np.asarray(self.held_out_confidence)
        threshold = estimate_threshold(held_out, target_error) if len(held_out) else 1.0 - target_error
        if batch_confidence is not None and len(batch_confidence) >= MIN_POPULATION:
            own = estimate_threshold(batch_confidence, target_error)
            if own > np.min(batch_confidence):  # the batch's own estimate leaves some of it unanswered
                threshold = max(threshold, own)
        return threshold


UNCALIBRATED = Calibration(1.0, 0, None, None, ())


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Temperature scaling fitted on held-out logits and labels; UNCALIBRATED when there are none."""
    if not len(labels):
        return UNCALIBRATED
    labels = np.asarray(labels, dtype=np.int64)
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits / temperature)
    correct = before.argmax(axis=1) == labels
    return Calibration(
        temperature=round(temperature, 6),
        held_out_rows=len(labels),
        ece_before=expected_calibration_error(before.max(axis=1), correct),
        ece_after=expected_calibration_error(after.max(axis=1), correct),
        held_out_confidence=tuple(np.round(np.sort(after.max(axis=1))[::-1], 6).tolist()),
    )


def calibration_file(model_file: Path) -> Path:
    """Where a saved model's calibration lives: beside its `.keras` and `.onnx`, same key."""
    return model_file.with_suffix(".calibration.json")


def save_calibration(calibration: Calibration, path: Path) -> None:
    write_json_atomic(path, asdict(calibration))


def load_calibration(path: Path) -> Calibration | None:
    """The saved calibration, None when there is none; a damaged file is a DataFormatError naming it."""
    try:
        recorded = json.loads(path.read_text())
        calibration = Calibration(**{**recorded, "held_out_confidence": tuple(recorded["held_out_confidence"])})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataFormatError(f"{path}: expected a model calibration written by mnist-pipeline, found: {exc}") from exc
    if not 0.05 <= calibration.temperature <= 20.0:
        raise DataFormatError(f"{path}: expected a temperature in 0.05..20, found {calibration.temperature}")
    return calibration


@dataclass(frozen=True)
class Selective:
    """Answers at a threshold on a labelled set: how many were answered, and the error among them with its
    stated upper bound."""

    threshold: float
    target_error: float
    coverage: float
    error: float
    error_bound: float
    answered: int

    @classmethod
    def score(cls, confidence: np.ndarray, correct: np.ndarray, threshold: float, target_error: float) -> Selective:
        answered = np.asarray(confidence) >= threshold
        errors = int((~np.asarray(correct, dtype=bool))[answered].sum())
        count = int(answered.sum())
        return cls(
            threshold=round(threshold, 6),
            target_error=target_error,
            coverage=count / len(answered) if len(answered) else 0.0,
            error=errors / count if count else 0.0,
            error_bound=bound_error(errors, count, max(1, math.ceil(math.log2(max(len(answered), 2))))),
            answered=count,
        )
