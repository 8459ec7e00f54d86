"""What the champions already learnt from: whether a run has new data for them, and which models it fine-tunes.

A champion's `data_fingerprint` names the dataset version its run trained on (the grown version: base plus the
accepted increments), so a run on that same version has nothing new to teach it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mnist_pipeline.champion.registry import Registry, find_champion
from mnist_pipeline.data.layout import DataLayout

log = logging.getLogger(__name__)


def describe_no_new_data(registry: Registry, models: Sequence[str], fingerprint: str) -> str | None:
    """The one line to log when every model's champion was trained on exactly the dataset `fingerprint`, so a
    retrain could only repeat it; None when some model has no champion yet or its champion saw other data."""
    champions = [find_champion(registry, model) for model in models]
    if not champions or any(champion is None or champion.data_fingerprint != fingerprint for champion in champions):
        return None
    return f"no new data since the champions' dataset {fingerprint[:12]}: nothing to train"


def find_warm_starts(layout: DataLayout, registry: Registry, models: Sequence[str]) -> dict[str, str]:
    """Each model's champion key, for the models whose champion's saved model opens, to fine-tune; a model left
    out (no champion yet, its file collected or damaged: logged) trains from scratch."""
    from mnist_pipeline.modeling.model_health import find_model_damage  # onnxruntime: only for a warm start

    starts = {}
    for model in models:
        champion = find_champion(registry, model)
        if champion is None:
            continue
        damage = find_model_damage(layout.model_file(model, champion.key))
        if damage is None:
            starts[model] = champion.key
        else:
            log.warning("%s: cannot fine-tune champion %s (%s); training from scratch", model, champion.key, damage)
    return starts
