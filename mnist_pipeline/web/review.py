"""The review page's desk: queued images handed out in review order (each leased to one request for LEASE_SECONDS,
in this process), labels recorded, batches sent to the gate; the queue is scored again in a background thread
when the champion registry changes, so a review request runs no model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.modeling.registry import CNN_MODEL
from mnist_pipeline.review.queue import ReviewQueue, read_json
from mnist_pipeline.review.sampling import is_audit, order_for_review
from mnist_pipeline.web.champion import ChampionWatch, NoChampion, registry_identity
from mnist_pipeline.web.feedback import TooFewCorrections, list_corrections

LEASE_SECONDS = 120.0
ItemId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{32}$")]
UNDO = "undo"
# What an item says when the queue does not know it (an image whose add-scans was interrupted) or it is unscored.
UNKNOWN = dict.fromkeys(("source", "note", "added_at", "refused", "predicted", "confidence", "top3", "unsure"))


def parse_action(body: Any) -> int | str | None:
    """{"label": D} -> D, {"unreadable": true} -> None, {"undo": true} -> UNDO; anything else is a 422."""
    if isinstance(body, dict) and len(body) == 1:
        ((key, value),) = body.items()
        if key == "label" and type(value) is int and 0 <= value <= 9:
            return value
        if key in ("unreadable", UNDO) and value is True:
            return UNDO if key == UNDO else None
    expected = '{"label": D} with D in 0..9, {"unreadable": true} or {"undo": true}'
    raise HTTPException(422, f"review: expected {expected}, found {str(body)[:200]}")


class ParsedFiles:
    """JSON files parsed again only when they change (another inode, size or modification time; the queue's writes
    replace files whole). Every key asks for the queue's status, and parsing the scores and items of 1 700 queued
    scans took most of the 50 ms a key may take (bench/RESULTS.md, "Review key round trip")."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parsed: dict[Path, tuple[tuple[int, int, int], Any]] = {}

    def read(self, path: Path, default: Any) -> Any:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return default
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self.lock:
            found = self.parsed.get(path)
        if found is not None and found[0] == signature:
            return found[1]
        value = read_json(path, default)  # replaced meanwhile: the next read sees another signature
        with self.lock:
            self.parsed[path] = (signature, value)
        return value


class ReviewDesk:
    """Hands out, records, and sends the labels with `submit` (the drawing page's `FeedbackDesk.submit` on
    `inbox/reviewed/`) once `threshold` wait, or once no label came for `idle_seconds`; thread-safe (FastAPI runs
    blocking work in a thread pool)."""

    def __init__(
        self, layout: DataLayout, threshold: int, submit: Callable[[], dict[str, Any]], idle_seconds: float
    ) -> None:
        self.idle_seconds = idle_seconds
        self.idle = threading.Timer(0, lambda: None)
        self.queue = ReviewQueue(layout, read=ParsedFiles().read)
        self.layout = layout
        self.threshold = threshold
        self.submit = submit
        self.watch = ChampionWatch(layout, CNN_MODEL)
        self.lock = threading.Lock()
        self.leases: dict[str, float] = {}
        self.seen: dict[Path, Any] = {}

    def refresh(self) -> None:
        """In the background: score the queue again once the champion changed; put refused batches back."""
        for path, act in ((self.layout.registry, self.rescore), (self.layout.refused, self.queue.return_refused)):
            identity = registry_identity(path)
            with self.lock:
                changed, self.seen[path] = self.seen.get(path, False) != identity, identity
            if changed:
                threading.Thread(target=act, daemon=True).start()

    def rescore(self) -> None:
        with contextlib.suppress(NoChampion):  # none yet: the registry changes when there is one
            serving = self.watch.current()
            self.queue.score(serving.engine, serving.choice.key)

    def hand_out(self, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict[str, Any]]:
        """The next `limit` queued images in review order that nobody holds, leased to this request."""
        self.refresh()
        answers, items = self.queue.read_scores().answers, self.queue.read_items()
        queued = {item: answers.get(item, {}) for item in self.queue.list_queued()}
        order = order_for_review({item: answer.get("confidence") for item, answer in queued.items()})
        now = time.monotonic()
        with self.lock:  # a label releases its image's lease once the image has left the queue: look again
            unleased = (item for item in order if self.leases.get(item, 0.0) <= now)
            free = list(itertools.islice((item for item in unleased if self.queue.image_file(item).is_file()), limit))
            self.leases.update(dict.fromkeys(free, now + LEASE_SECONDS))
        return [
            {"id": item, **UNKNOWN, **items.get(item, {}), **queued[item], "audit": is_audit(item)} for item in free
        ]

    def review(self, item_id: str, action: int | str | None) -> dict[str, Any]:
        """Record a label or unreadable, durably, or undo one; 409 when the image is not where that needs it."""
        try:
            if action == UNDO:
                self.queue.undo(item_id)
            else:
                self.queue.record(item_id, action)
        except FileNotFoundError as exc:
            state = "reviewed and not sent to the gate yet" if action == UNDO else "queued"
            raise HTTPException(409, f"review item {item_id}: expected it {state}, found it is not") from exc
        with self.lock:  # an undone image stays with its reviewer
            self.leases[item_id] = time.monotonic() + LEASE_SECONDS if action == UNDO else 0.0
        waiting = len(list_corrections(self.layout.reviewed))
        if waiting >= self.threshold:  # landed beside the requests, so no key waits for it
            threading.Thread(target=self.submit_quietly, daemon=True).start()
        with self.lock:  # the idle clock starts again at every label
            self.idle.cancel()
            self.idle = threading.Timer(self.idle_seconds, self.submit_quietly)
            self.idle.daemon = True
            self.idle.start()
        return {"id": item_id, "waiting": waiting, "threshold": self.threshold}

    def submit_quietly(self) -> None:
        with contextlib.suppress(TooFewCorrections):  # repeats dropped left too few: they wait for more
            self.submit()

    def status(self) -> dict[str, Any]:
        self.refresh()
        scores, items, queued = self.queue.read_scores(), self.queue.read_items(), self.queue.list_queued()
        everything, answered = self.queue.estimate_audit(scores)
        return {
            "reviewed": max(0, len(items) - len(queued)),
            "left": len(queued),
            "waiting": len(list_corrections(self.layout.reviewed)),
            "threshold": self.threshold,
            "model_key": scores.model_key,
            "audit": dataclasses.asdict(everything),
            "audit_answered": dataclasses.asdict(answered),
            "refused": sorted({items[item]["refused"] for item in queued if items.get(item, {}).get("refused")}),
        }


def add_review_routes(app: FastAPI, desk: ReviewDesk, page: Path) -> None:
    """`/review` and its JSON API; errors are HTTPExceptions or validation errors, which the app answers as JSON."""

    app.add_api_route("/review", lambda: FileResponse(page), include_in_schema=False)
    app.add_api_route("/api/review/next", desk.hand_out)  # a plain method runs in the thread pool
    app.add_api_route("/api/review/status", desk.status)

    @app.post("/api/review/submit")
    def submit() -> JSONResponse:
        return JSONResponse(desk.submit())

    @app.get("/api/review/{item_id}/image")
    def image(item_id: ItemId) -> Response:
        try:
            return Response(desk.queue.image_file(item_id).read_bytes(), media_type="image/png")
        except FileNotFoundError as exc:
            raise HTTPException(404, f"review item {item_id}: expected a queued image, found none") from exc

    @app.post("/api/review/{item_id}")
    async def review(item_id: ItemId, request: Request) -> JSONResponse:
        try:
            action = parse_action(await request.json())
        except ValueError as exc:  # not JSON, or not UTF-8
            raise HTTPException(400, f"review: expected a JSON body, found: {exc}") from exc
        return JSONResponse(await run_in_threadpool(desk.review, item_id, action))
