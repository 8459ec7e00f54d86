"""Recorded predictions' Parquet files name the model key they scored, in their schema metadata.

Their own key (evaluations/<model>/<eval_key>.parquet) is a hash that includes the model key and cannot be traced
back to it; pruning needs to know which model a recording belongs to. Keras-free, so pruning can read it cheaply.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MODEL_KEY_METADATA = b"mnist_pipeline.model_key"


def tag_with_model_key(table: pa.Table, model_key: str) -> pa.Table:
    """The predictions table with the scored model's key in its schema metadata (pandas' metadata kept)."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), MODEL_KEY_METADATA: model_key.encode()})


def read_model_key(predictions: Path) -> str | None:
    """The model key a predictions file names; None for files recorded before keys were.

    Raises OSError or pyarrow.ArrowException when the file cannot be read: a passing read error is no proof that
    a file belongs to nobody, so callers must not treat it like a missing key."""
    raw = (pq.read_schema(predictions).metadata or {}).get(MODEL_KEY_METADATA)
    return raw.decode() if raw else None
