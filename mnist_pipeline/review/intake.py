"""`add-scans`: unlabelled images into the review queue, scored by the CNN champion; and the queue's summary, with
the audit share's estimate of how well the champion reads this population (the `review-queue` artifact)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.increments.hashes import hash_images
from mnist_pipeline.markdown import escape_markdown
from mnist_pipeline.modeling.registry import CNN_MODEL
from mnist_pipeline.modeling.serving import open_engine
from mnist_pipeline.predict.inputs import load_inputs
from mnist_pipeline.predict.model_choice import choose_model
from mnist_pipeline.predict.preprocess import MNIST_SHAPE
from mnist_pipeline.review.queue import ReviewQueue
from mnist_pipeline.review.sampling import Estimate


@dataclass(frozen=True)
class ScanIntake:
    """What one `add-scans` did: images queued, skipped (and why), unreadable, and scored by which champion."""

    queued: int
    already_queued: int
    in_test: int
    accepted: int
    unreadable: list[tuple[str, str]]
    scored: int
    champion: str | None


def queue_scans(layout: DataLayout, source: Path, note: str | None) -> ScanIntake:
    """Queue SOURCE's images (read as `predict` reads them) that are neither queued, MNIST test images nor accepted
    already, then score the queue with the CNN champion: the new images, or all of them when the champion changed."""
    queue, loaded = ReviewQueue(layout), load_inputs([source], MNIST_SHAPE)
    if not loaded.names:
        return ScanIntake(0, 0, 0, 0, loaded.failures, 0, None)
    in_test, accepted = queue.find_known(hash_images(loaded.images))
    keep = ~(in_test | accepted)
    queued = queue.add(loaded.images[keep], [name for name, kept in zip(loaded.names, keep, strict=True) if kept], note)
    counts = (queued, int(keep.sum()) - queued, int(in_test.sum()), int(accepted.sum()), loaded.failures)
    try:
        choice = choose_model(CNN_MODEL, layout)
    except PipelineError:  # no champion yet: the web app scores the queue once there is one
        return ScanIntake(*counts, 0, None)
    return ScanIntake(*counts, queue.score(open_engine(layout, choice.model, choice.key), choice.key), choice.key)


def describe_estimate(estimate: Estimate, what: str) -> str:
    if not estimate.count or estimate.accuracy is None or estimate.low is None or estimate.high is None:
        return f"{what}: no audit labels yet"
    return (
        f"{what}: {100 * estimate.accuracy:.1f} % right (95 % Wilson interval {100 * estimate.low:.1f} to "
        f"{100 * estimate.high:.1f} %, {estimate.count} audit labels)"
    )


def render_queue_markdown(layout: DataLayout) -> str:
    """The queue in numbers, and the champion's accuracy on its random audit share: on everything, and on what it
    answered at the target error (its error there is 100 % minus that)."""
    queue = ReviewQueue(layout)
    scores, items, queued = queue.read_scores(), queue.read_items(), queue.list_queued()
    everything, answered = queue.estimate_audit(scores)
    unsure = sum(bool(scores.answers.get(item, {}).get("unsure")) for item in queued)
    return "\n".join(
        [
            "# Review queue",
            "",
            f"{len(queued)} images waiting for a label ({unsure} the champion is not sure of), "
            f"{len(items) - len(queued)} reviewed. Champion: cnn, key {escape_markdown(str(scores.model_key))}.",
            "",
            f"- {describe_estimate(everything, 'Every audited image')}",
            f"- {describe_estimate(answered, 'Audited images it answered')}",
        ]
    )
