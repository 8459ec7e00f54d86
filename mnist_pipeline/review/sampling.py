"""Which queued image a person is asked about next (least sure first, one in AUDIT_EVERY drawn at random into an
audit share), and what the audit share's labels say: a Wilson score interval (docs/app.md, The review page).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from scipy.stats import binomtest

AUDIT_EVERY = 10
AUDIT_SEED = "mnist-pipeline review audit 1"


@dataclass(frozen=True)
class Estimate:
    """The champion's accuracy on `count` audited labels, `correct` of them right, with its 95 % interval."""

    count: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None


def draw_audit(item_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the id; rehashed, so it is independent of the content hash
    bytes that pick an image's 80/20 part."""
    digest = hashlib.blake2b(f"{AUDIT_SEED}:{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_audit(item_id: str) -> bool:
    return draw_audit(item_id) < 1 / AUDIT_EVERY


def order_for_review(confidences: Mapping[str, float | None]) -> list[str]:
    """Ids in review order: least sure first (unscored ones before all), the next audit item at every
    AUDIT_EVERY-th place; whichever kind runs out, the other follows."""
    draws = {item: draw_audit(item) for item in confidences}
    audit = sorted((item for item in draws if draws[item] < 1 / AUDIT_EVERY), key=draws.__getitem__, reverse=True)
    rest = sorted(set(confidences) - set(audit), key=lambda item: (confidences[item] or 0, item), reverse=True)
    order: list[str] = []  # both lists are reversed: pop() takes the next
    while audit or rest:
        take_audit = audit and (not rest or len(order) % AUDIT_EVERY == AUDIT_EVERY - 1)
        order.append((audit if take_audit else rest).pop())
    return order


def estimate_accuracy(correct: int, count: int) -> Estimate:
    """The share right and its 95 % Wilson score interval (Wilson 1927, scipy's); no figures without a label."""
    if count == 0:
        return Estimate(0, 0, None, None, None)
    interval = binomtest(correct, count).proportion_ci(confidence_level=0.95, method="wilson")
    return Estimate(count, correct, correct / count, float(interval.low), float(interval.high))
