"""People's corrections from the drawing page: pending in `inbox/feedback/<digit>/`, sent to the gate in batches;
the review page's labels wait in `inbox/reviewed/<digit>/` and go the same way (`folder`). How a batch is formed,
which repeats are dropped and how a killed submission recovers is in docs/app.md (Corrections and the gate).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.files.atomic import hold_lock, write_bytes_atomic
from mnist_pipeline.increments.hashes import SHA_BYTES, as_sha_array, hash_images, read_index
from mnist_pipeline.increments.inbox import BATCH_FILE, land_batch, list_pending
from mnist_pipeline.increments.sources import LabelledBatch, read_labelled_batch
from mnist_pipeline.predict.inputs import to_png

DEFAULT_THRESHOLD = defaults.FEEDBACK_BATCH
NOTE = "feedback"
GATE_LOG = "feedback-gate.log"
STAGING_PREFIX = ".submitting-"


@dataclass(frozen=True)
class Submission:
    """A batch of corrections landed in the inbox, and the gate started on it (its log file)."""

    batch_id: str
    rows: int
    problems: list[str]
    dropped: list[str]
    log: Path


class TooFewCorrections(Exception):
    """Fewer different corrections wait than the gate's minimum: nothing was landed, they keep waiting."""

    def __init__(self, waiting: int, minimum: int, dropped: list[str], folder: str = NOTE) -> None:
        super().__init__(
            f"{folder}: expected at least {minimum} different corrections for a batch (the gate's --min-images), "
            f"found {waiting} waiting"
        )
        self.waiting = waiting
        self.minimum = minimum
        self.dropped = dropped


def save_correction(layout: DataLayout, label: int, image: np.ndarray) -> Path:
    """Write one correction (uint8 28x28) as `feedback/<label>/<UTC time>-<8 hex>.png`; returns its path."""
    if not 0 <= label <= 9:
        raise ValueError(f"label: expected a digit 0..9, found {label}")
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.png"
    path = layout.feedback / str(label) / name
    write_bytes_atomic(path, to_png(image))
    return path


def list_corrections(folder: Path) -> list[Path]:
    """The pending corrections in `folder` (digit folders' non-hidden PNG files), oldest first."""
    return sorted(
        (path for path in folder.glob("[0-9]/*.png") if not path.name.startswith(".")), key=lambda path: path.name
    )


def recover_stranded(folder: Path) -> None:
    """Put back the corrections of a submission that was killed before it finished (call under the lock)."""
    for staging in folder.glob(f"{STAGING_PREFIX}*"):
        for path in list_corrections(staging):
            (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
            path.rename(folder / path.parent.name / path.name)
        shutil.rmtree(staging, ignore_errors=True)


def read_known_hashes(layout: DataLayout) -> pa.Array:
    """The hashes of every image the gate would call a duplicate: waiting in the inbox, or accepted."""
    known = []
    for batch_id in list_pending(layout):
        try:
            known.append(pq.read_table(layout.inbox / batch_id / BATCH_FILE, columns=["sha"]).column("sha"))
        except FileNotFoundError:  # the gate took it meanwhile: the index below has it
            continue
    known.append(read_index(layout, ("sha",)).column("sha"))
    chunks = [chunk for column in known for chunk in column.chunks]
    return pa.chunked_array(chunks, pa.binary(SHA_BYTES)).combine_chunks()


def find_repeats(shas: np.ndarray, names: list[str], known: pa.Array) -> list[tuple[int, str]]:
    """(row, why) of each image the gate would refuse as a duplicate: seen before, or earlier in this batch."""
    seen_before = pc.is_in(as_sha_array(shas), value_set=known).to_numpy(zero_copy_only=False)
    first: dict[bytes, str] = {}
    repeats = []
    for row, (name, sha) in enumerate(zip(names, shas.view(np.uint8).reshape(-1, SHA_BYTES), strict=True)):
        key = sha.tobytes()
        if seen_before[row]:
            repeats.append((row, "the same image is accepted already or waiting in the inbox"))
        elif key in first:
            repeats.append((row, f"the same image as {first[key]}"))
        else:
            first[key] = name
    return repeats


def drop_repeats(layout: DataLayout, staging: Path, batch: LabelledBatch) -> list[str]:
    """Delete the corrections the gate would refuse as duplicates; one line per file deleted."""
    names = [f"{staging.parent.name}/{name}" for name in batch.names]  # as in inbox/feedback/
    dropped = []
    for row, why in find_repeats(hash_images(batch.images), names, read_known_hashes(layout)):
        (staging / batch.names[row]).unlink()
        dropped.append(f"{names[row]}: dropped, {why}")
    return dropped


def submit_corrections(
    layout: DataLayout,
    start: Callable[[DataLayout], Path],
    folder: Path | None = None,
    minimum: int = defaults.MIN_IMAGES,
) -> Submission | None:
    """Land every pending correction of `folder` (`inbox/feedback/`, or the review page's `inbox/reviewed/`),
    repeats dropped, as one inbox batch noted with the folder's name, and `start` the gate on it; None when there
    are none, TooFewCorrections (nothing landed) when fewer than `minimum` different ones are left."""
    folder = folder or layout.feedback
    with hold_lock(layout.locks / f"{folder.name}.lock"):
        recover_stranded(folder)
        corrections = list_corrections(folder)
        if not corrections:
            return None
        staging = folder / f"{STAGING_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        for path in corrections:
            (staging / path.parent.name).mkdir(parents=True, exist_ok=True)
            path.rename(staging / path.parent.name / path.name)
        try:
            batch = read_labelled_batch(staging)
            dropped = drop_repeats(layout, staging, batch)
            if dropped:  # read again what is left (none left: an empty batch)
                batch = read_labelled_batch(staging) if list_corrections(staging) else None
            if batch is None or batch.rows < minimum:
                raise TooFewCorrections(batch.rows if batch else 0, minimum, dropped, folder.name)
            batch_id = land_batch(layout, batch, source=str(folder), note=folder.name)
        except BaseException:
            for path in list_corrections(staging):  # back in the queue, for the next try
                path.rename(folder / path.parent.name / path.name)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Submission(batch_id, batch.rows, batch.problems, dropped, start(layout))


def start_gate(layout: DataLayout) -> Path:
    """`mnist-pipeline add-data --pending --data-dir DIR`, detached (its own session; it outlives the app);
    returns the log file its output is appended to."""
    log = layout.inbox / GATE_LOG
    command = [sys.executable, "-m", "cli.main", "add-data", "--pending", "--data-dir", str(layout.root)]
    with log.open("ab") as output:
        subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return log
