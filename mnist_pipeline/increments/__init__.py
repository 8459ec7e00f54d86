"""New labelled batches: read, landed in the inbox, checked by the gate, accepted as immutable increments."""

from typing import Literal

# What the gate emits for each accepted batch, about resource `RESOURCE_PREFIX + <increment id>`, and what the
# retrain deployment's trigger listens for (flows/deploy.py, prefect.yaml).
ACCEPTED_EVENT = "mnist.increment.accepted"
RESOURCE_PREFIX = "mnist-pipeline.increment."

# What flagged drift does at the gate (`--drift`): only reported, or refusing the batch. Here, not in `gate`, so the
# CLI can offer the choices without importing scipy.
DriftMode = Literal["report", "block"]
DRIFT_MODES: tuple[DriftMode, ...] = ("report", "block")
