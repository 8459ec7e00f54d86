"""The review queue in `DATA_DIR/inbox/review/` (its files: docs/increments.md): unlabelled images waiting for a
person, each stored once as the PNG of its prepared picture named by its content hash, and what each became. A
review moves a file with one rename; `.locks/review.lock` serialises the writers of items.json and scores.json.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from PIL import Image

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.files.atomic import hold_lock, sync_path, write_bytes_atomic, write_json_atomic, write_text_atomic
from mnist_pipeline.increments.hashes import SHA_BYTES, as_sha_array, hash_images, read_index
from mnist_pipeline.increments.inbox import META_FILE, REASONS_FILE, read_pending
from mnist_pipeline.modeling.serving import Engine
from mnist_pipeline.predict.answer import predict_images
from mnist_pipeline.predict.inputs import to_png
from mnist_pipeline.review.sampling import Estimate, estimate_accuracy, is_audit

REQUEUED_FILE = "requeued.txt"  # in a refused review batch's folder: its images went back to the queue


@dataclass(frozen=True)
class Scores:
    """The answers (`predicted`: the best guess, `confidence`, `top3`, and `unsure`: under the threshold for the
    target error, the images added together judged as one population) of the champion `model_key` per queued id."""

    model_key: str | None
    answers: dict[str, dict[str, Any]]


def to_ids(shas: np.ndarray) -> list[str]:
    """Hex ids of content hashes ('S16'; viewed as bytes, since numpy drops a hash's trailing zero bytes)."""
    return [row.tobytes().hex() for row in np.ascontiguousarray(shas).view(np.uint8).reshape(-1, SHA_BYTES)]


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


@dataclass(frozen=True)
class ReviewQueue:
    """The queue of one data dir: what `add-scans` writes and the review page reads and moves. `read` parses the
    JSON files that are only read (the review page passes a cache); changes always start from the file."""

    layout: DataLayout
    read: Callable[[Path, Any], Any] = read_json

    def image_file(self, item_id: str, state: str = "queue") -> Path:
        return self.layout.review / state / f"{item_id}.png"

    def list_queued(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):  # iterdir: several times faster than glob here
            return [path.stem for path in (self.layout.review / "queue").iterdir() if path.suffix == ".png"]
        return []

    def read_items(self) -> dict[str, dict[str, Any]]:
        return self.read(self.layout.review / "items.json", {})

    def read_scores(self) -> Scores:
        found = self.read(self.layout.review / "scores.json", {})
        return Scores(found.get("model_key"), found.get("answers", {}))

    def read_fresh(self) -> ReviewQueue:
        """This queue reading its files as they are now: what a change starts from (under the queue's lock)."""
        return replace(self, read=read_json)

    def find_known(self, shas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per image: whether it is one of the published MNIST test split, and (if not) one accepted already: the
        gate refuses both as labelled data, so a person's label for one would be wasted."""
        test_file = self.layout.split_file("test")
        if not test_file.is_file():
            raise DataFormatError(f"{test_file}: expected the published test split, found none (run ingest first)")
        in_test = np.isin(shas, hash_images(read_split(test_file).images))
        accepted = pc.is_in(as_sha_array(shas), read_index(self.layout, ("sha",)).column("sha").combine_chunks())
        return in_test, accepted.to_numpy(zero_copy_only=False) & ~in_test

    def add(self, images: np.ndarray, names: list[str], note: str | None) -> int:
        """Store each image never queued before (the first of repeats) with where it came from; returns how many."""
        added_at = datetime.now(UTC).isoformat(timespec="seconds")
        with hold_lock(self.layout.locks / "review.lock"):
            items = self.read_fresh().read_items()
            before = len(items)
            for item_id, image, name in zip(to_ids(hash_images(images)), images, names, strict=True):
                if item_id not in items:  # the picture first, so an interrupted add is finished by the next one
                    write_bytes_atomic(self.image_file(item_id), to_png(image))
                    items[item_id] = {"source": name, "note": note, "added_at": added_at}
            write_json_atomic(self.layout.review / "items.json", items)
        return len(items) - before

    def score(self, engine: Engine, model_key: str) -> int:
        """Answer every queued image that the champion `model_key` has not answered (all of them after a change of
        champion); returns how many were scored."""
        with hold_lock(self.layout.locks / "review.lock"):
            scores = self.read_fresh().read_scores()
            answers = scores.answers if scores.model_key == model_key else {}
            images: dict[str, np.ndarray] = {}
            for item_id in (item_id for item_id in self.list_queued() if item_id not in answers):
                with contextlib.suppress(FileNotFoundError):  # reviewed meanwhile
                    images[item_id] = np.asarray(Image.open(self.image_file(item_id)).convert("L"))
            stack = np.stack(list(images.values())) if images else np.zeros((0, *engine.input_shape), np.uint8)
            for answer in predict_images(engine, stack, list(images)).items:
                answers[answer.input] = {
                    "predicted": answer.top,
                    "confidence": answer.probability,
                    "top3": answer.top3,
                    "unsure": answer.unsure,
                }
            write_json_atomic(self.layout.review / "scores.json", {"model_key": model_key, "answers": answers})
        return len(images)

    def record(self, item_id: str, label: int | None) -> None:
        """Move a queued image to `reviewed/<label>/`, or `unreadable/` for None, durably; then, for an audit image,
        write its label beside the champion's answer. FileNotFoundError when it is not queued (reviewed already)."""
        folder = self.layout.review / "unreadable" if label is None else self.layout.reviewed / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        self.image_file(item_id).rename(folder / f"{item_id}.png")
        sync_path(folder)
        sync_path(self.image_file(item_id).parent)
        if label is not None and is_audit(item_id):
            write_json_atomic(self.layout.review / "audit" / f"{item_id}.json", {"label": label})

    def undo(self, item_id: str) -> None:
        """Put a reviewed image back in the queue; FileNotFoundError when it is not waiting to be sent (sent to the
        gate already, or never reviewed)."""
        found = [*self.layout.reviewed.glob(f"[0-9]/{item_id}.png"), self.image_file(item_id, "unreadable")]
        reviewed = next((path for path in found if path.is_file()), None)
        if reviewed is None:
            raise FileNotFoundError(item_id)
        reviewed.rename(self.image_file(item_id))
        sync_path(self.image_file(item_id).parent)
        (self.layout.review / "audit" / f"{item_id}.json").unlink(missing_ok=True)

    def estimate_audit(self, scores: Scores) -> tuple[Estimate, Estimate]:
        """The accuracy of the champion that gave `scores` on the audit images it scored before they were labelled
        (a new champion scores only what is queued, so labels it may have been trained on do not count): on all of
        them, and on those it was sure of (1 - that is its error at the threshold)."""
        labels = {path.stem: self.read(path, {}).get("label") for path in (self.layout.review / "audit").glob("*.json")}
        mine = [
            (label == scores.answers[item]["predicted"], not scores.answers[item].get("unsure", False))
            for item, label in labels.items()
            if item in scores.answers
        ]
        sure = [right for right, answered in mine if answered]
        return estimate_accuracy(sum(right for right, _ in mine), len(mine)), estimate_accuracy(sum(sure), len(sure))

    def return_refused(self) -> list[str]:
        """Put the images of each refused review batch back in the queue, each with the gate's reasons; the batch's
        folder stays in `inbox/refused/`, marked done. Returns the batch ids."""
        returned = []
        with hold_lock(self.layout.locks / "review.lock"):
            items = self.read_fresh().read_items()
            for folder in sorted(self.layout.refused.glob("b-*")):
                note = read_json(folder / META_FILE, {}).get("note")
                if (folder / REQUEUED_FILE).exists() or note != self.layout.reviewed.name:
                    continue
                batch = read_pending(self.layout, folder.name, folder)
                reasons = "; ".join((folder / REASONS_FILE).read_text().splitlines())
                for item_id, image in zip(to_ids(batch.shas), batch.images, strict=True):
                    write_bytes_atomic(self.image_file(item_id), to_png(image))
                    items.setdefault(item_id, {"source": folder.name})["refused"] = f"batch {folder.name}: {reasons}"
                write_json_atomic(self.layout.review / "items.json", items)
                write_text_atomic(folder / REQUEUED_FILE, f"{len(batch.images)} images back in {self.layout.review}\n")
                returned.append(folder.name)
        return returned
