"""Does a new labelled batch look like the training data? The drift tests of the increment gate (scipy), tabled
with their thresholds in docs/increments.md. Large batches are judged by distances, not hypothesis tests, and the
reference is a seeded sample of at most `REFERENCE_SAMPLE` images, so the cost grows with the batch only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mnist_pipeline.validation.suite import CLASSES

if TYPE_CHECKING:
    from mnist_pipeline.modeling.serving import Engine

N_CLASSES = len(CLASSES)
# Up to this many batch images the tests are hypothesis tests (chi-square, KS); above it, distances.
LARGE_BATCH = 1000
ALPHA = 0.05
JS_THRESHOLD = 0.1
WASSERSTEIN_THRESHOLD = 0.1
# A reference feature with a smaller spread than this is divided by it instead (a constant feature).
MIN_SPREAD = 1e-3
REFERENCE_SAMPLE = 5000
SAMPLE_SEED = 0
# A pixel at or above this level (of 255) is ink, as in MNIST's usual binarisation at one half.
INK_LEVEL = 128

FEATURES = {
    "ink_fraction": "ink fraction",
    "mean_intensity": "mean intensity",
    "bbox_height": "box height (px)",
    "bbox_width": "box width (px)",
    "centre_row": "centre row (px)",
    "centre_col": "centre column (px)",
    "stroke_width": "stroke width (px)",
}
FEATURE_ALPHA = ALPHA / len(FEATURES)


@dataclass(frozen=True)
class DriftTest:
    """One test: `kind` says what `threshold` bounds (`p_value`: flagged when p < threshold; `distance`: flagged
    when statistic > threshold). `skipped` is the reason it did not run (then it never flags)."""

    name: str
    method: str
    kind: Literal["p_value", "distance"]
    threshold: float
    statistic: float | None = None
    p_value: float | None = None
    flagged: bool = False
    detail: str = ""
    skipped: str | None = None

    def describe(self) -> str:
        """One human line: what was measured, the figure and the rule it broke or kept."""
        if self.skipped is not None:
            return f"{self.name}: skipped ({self.skipped})"
        if self.kind == "p_value":
            figure = f"p = {self.p_value:.3g} {'<' if self.flagged else '>='} {self.threshold:.3g}"
        else:
            figure = f"{self.statistic:.3g} {'>' if self.flagged else '<='} {self.threshold:.3g}"
        return f"{self.name}: {figure} ({'; '.join(part for part in (self.method, self.detail) if part)})"


@dataclass(frozen=True)
class DriftReport:
    """Every test of one batch against the reference; `flagged` when any test flagged."""

    batch_rows: int
    reference_rows: int
    tests: list[DriftTest]

    @property
    def flagged(self) -> bool:
        return any(test.flagged for test in self.tests)

    def lines(self) -> list[str]:
        """One human line per flagged test, for the CLI."""
        return [test.describe() for test in self.tests if test.flagged]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values for the increment manifest."""
        return {
            "flagged": self.flagged,
            "batch_rows": self.batch_rows,
            "reference_rows": self.reference_rows,
            "tests": [asdict(test) for test in self.tests],
        }


def choose_reference_rows(total: int, limit: int = REFERENCE_SAMPLE) -> np.ndarray:
    """The rows (sorted) of a reference of `total` images the tests use: all up to `limit`, else a seeded sample."""
    if total <= limit:
        return np.arange(total)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(total, size=limit, replace=False))


def measure_shapes(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image shape statistics (float64, one value per image), vectorised over the batch.

    Ink is a pixel >= INK_LEVEL. Bounding box: the rows and columns holding ink (0 without ink). Centre of mass:
    intensity-weighted, in pixel indices (the frame's centre, 13.5, without ink). Stroke width: the shorter side of
    the rectangle with the ink's area A and 4-neighbour perimeter P (ink/background pixel edges, the frame counting
    as background), (P - sqrt(P^2 - 16 A)) / 4: exact for a straight stroke, about 2 A / P for a long curved one;
    a cheap stand-in for area / skeleton length (P^2 >= 16 A holds for every pixel set).
    """
    pixels = np.asarray(images, dtype=np.float64)
    ink = np.asarray(images) >= INK_LEVEL
    height, width = ink.shape[1:]
    area = ink.sum(axis=(1, 2)).astype(np.float64)
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    across = padded[:, 1:, :] != padded[:, :-1, :]
    along = padded[:, :, 1:] != padded[:, :, :-1]
    perimeter = (across.sum(axis=(1, 2)) + along.sum(axis=(1, 2))).astype(np.float64)
    mass = pixels.sum(axis=(1, 2))
    weight = np.where(mass > 0, mass, 1.0)
    return {
        "ink_fraction": area / (height * width),
        "mean_intensity": pixels.mean(axis=(1, 2)) / 255,
        "bbox_height": _extent(rows),
        "bbox_width": _extent(cols),
        "centre_row": np.where(mass > 0, pixels.sum(axis=2) @ np.arange(height) / weight, (height - 1) / 2),
        "centre_col": np.where(mass > 0, pixels.sum(axis=1) @ np.arange(width) / weight, (width - 1) / 2),
        "stroke_width": (perimeter - np.sqrt(perimeter**2 - 16 * area)) / 4,
    }


def _extent(present: np.ndarray) -> np.ndarray:
    """Last minus first True index plus one, per row of `present` (n, length); 0 where none is True."""
    length = present.shape[1]
    first = present.argmax(axis=1)
    last = length - 1 - present[:, ::-1].argmax(axis=1)
    return np.where(present.any(axis=1), last - first + 1, 0).astype(np.float64)


def champion_probabilities(engine: Engine | None, images: np.ndarray) -> np.ndarray | None:
    """The champion's calibrated softmax outputs (n, 10) for `images`, or None without a champion (then the
    black-box tests are skipped)."""
    if engine is None:
        return None
    return engine.probabilities(np.asarray(images, dtype=np.uint8))


def compute_drift(
    batch_images: np.ndarray,
    batch_labels: np.ndarray,
    reference_images: np.ndarray,
    reference_labels: np.ndarray,
    batch_probs: np.ndarray | None = None,
    reference_probs: np.ndarray | None = None,
) -> DriftReport:
    """Every drift test of a batch (uint8 (n, 28, 28) MNIST-style images, labels 0..9) against the training data.

    `reference_probs` are the champion's outputs on images it was NOT trained on (e.g. `test`): on its own training
    images it is over-confident, and the black-box tests would always flag. Large references are sampled.
    """
    if (batch_probs is None) != (reference_probs is None):
        raise ValueError("batch_probs and reference_probs go together: give both or neither")
    if batch_probs is not None and len(batch_probs) != len(batch_images):
        raise ValueError("batch_probs needs one row per batch image")
    if len(batch_images) != len(batch_labels) or len(reference_images) != len(reference_labels):
        raise ValueError("each set needs one label per image")
    rows = choose_reference_rows(len(reference_images))
    reference_images, reference_labels = np.asarray(reference_images)[rows], np.asarray(reference_labels)[rows]
    large = len(batch_images) > LARGE_BATCH
    empty = _empty_reason(len(batch_images), len(reference_images))
    tests = [compare_labels(np.asarray(batch_labels), reference_labels, large, empty)]
    batch_shapes, reference_shapes = measure_shapes(batch_images), measure_shapes(reference_images)
    tests += [compare_feature(name, batch_shapes[name], reference_shapes[name], large, empty) for name in FEATURES]
    if batch_probs is None or reference_probs is None:
        tests += compare_outputs(None, None, "no champion")
    else:
        reference_probs = np.asarray(reference_probs)[choose_reference_rows(len(reference_probs))]
        tests += compare_outputs(
            np.asarray(batch_probs), reference_probs, _empty_reason(len(batch_probs), len(reference_probs))
        )
    return DriftReport(batch_rows=len(batch_images), reference_rows=len(reference_images), tests=tests)


def _empty_reason(batch_rows: int, reference_rows: int) -> str | None:
    if batch_rows == 0:
        return "empty batch"
    return "empty reference" if reference_rows == 0 else None


def compare_labels(batch: np.ndarray, reference: np.ndarray, large: bool, skipped: str | None) -> DriftTest:
    """Chi-square goodness of fit (small batch) or Jensen-Shannon distance (large batch) of the label counts; the
    reference's shares are add-one smoothed, since chi-square needs every expected count above zero."""
    name = "label_distribution"
    if large:
        method, kind, threshold = "Jensen-Shannon distance (base 2)", "distance", JS_THRESHOLD
    else:
        method, kind, threshold = "chi-square goodness of fit", "p_value", ALPHA
    observed = count_labels(batch)
    if skipped is None and observed.sum() == 0:
        skipped = "no label in 0..9"
    if skipped is not None:
        return DriftTest(name, method, kind, threshold, skipped=skipped)
    reference_counts = count_labels(reference)
    expected_share = (reference_counts + 1.0) / (reference_counts.sum() + N_CLASSES)
    batch_share = observed / observed.sum()
    digit = int(np.argmax(batch_share - expected_share))
    detail = (
        f"most over-represented: digit {digit}, {batch_share[digit]:.0%} of the batch vs {expected_share[digit]:.0%}"
    )
    if large:
        distance = float(jensenshannon(batch_share, expected_share, base=2))
        return DriftTest(name, method, kind, threshold, distance, None, distance > threshold, detail)
    result = stats.chisquare(observed, expected_share * observed.sum())
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return DriftTest(name, method, kind, threshold, statistic, p_value, p_value < threshold, detail)


def count_labels(labels: np.ndarray) -> np.ndarray:
    """How many of each digit 0..9 (float64); labels outside 0..9 (which the blocking checks refuse) not counted."""
    labels = np.asarray(labels).astype(np.int64)
    return np.bincount(labels[(labels >= 0) & (labels < N_CLASSES)], minlength=N_CLASSES).astype(np.float64)


def compare_feature(name: str, batch: np.ndarray, reference: np.ndarray, large: bool, skipped: str | None) -> DriftTest:
    """Two-sample KS (small batch) or reference-normalised Wasserstein distance (large batch) of one statistic; KS
    at ALPHA each would flag an honest batch about one time in six, hence Bonferroni over the seven."""
    if large:
        method, kind, threshold = "Wasserstein distance / reference std", "distance", WASSERSTEIN_THRESHOLD
    else:
        method, kind, threshold = f"two-sample KS, Bonferroni over {len(FEATURES)} statistics", "p_value", FEATURE_ALPHA
    if skipped is not None:
        return DriftTest(name, method, kind, threshold, skipped=skipped)
    detail = f"batch mean {batch.mean():.3g}, training mean {reference.mean():.3g}"
    if large:
        spread = max(float(reference.std()), MIN_SPREAD)
        distance = float(stats.wasserstein_distance(batch, reference)) / spread
        return DriftTest(name, method, kind, threshold, distance, None, distance > threshold, detail)
    return _ks_test(name, method, threshold, batch, reference, detail)


def compare_outputs(batch: np.ndarray | None, reference: np.ndarray | None, skipped: str | None) -> list[DriftTest]:
    """The black-box shift test: KS on the champion's top probability, and on each class's (Bonferroni over ten)."""
    per_class = ALPHA / N_CLASSES
    confidence = ("champion_confidence", "two-sample KS", ALPHA, lambda probs: probs.max(axis=1))
    classes = [
        (f"champion_prob_{k}", "two-sample KS, Bonferroni over 10 classes", per_class, lambda probs, k=k: probs[:, k])
        for k in range(N_CLASSES)
    ]
    if batch is None or reference is None or skipped is not None:
        reason = skipped or "no champion"
        return [
            DriftTest(name, method, "p_value", alpha, skipped=reason)
            for name, method, alpha, _ in [confidence, *classes]
        ]
    if batch.shape[1:] != (N_CLASSES,) or reference.shape[1:] != (N_CLASSES,):
        raise ValueError(f"expected probabilities of shape (n, {N_CLASSES}), found {batch.shape} and {reference.shape}")
    tests = []
    for name, method, alpha, pick in [confidence, *classes]:
        ours, theirs = pick(batch), pick(reference)
        detail = f"batch mean {ours.mean():.3g}, reference mean {theirs.mean():.3g}"
        tests.append(_ks_test(name, method, alpha, ours, theirs, detail))
    return tests


def _ks_test(name: str, method: str, alpha: float, batch: np.ndarray, reference: np.ndarray, detail: str) -> DriftTest:
    result = stats.ks_2samp(batch, reference)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return DriftTest(name, method, "p_value", alpha, statistic, p_value, p_value < alpha, detail)
