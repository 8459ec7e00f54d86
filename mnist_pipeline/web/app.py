"""The local web app: draw a digit and see the champion's answer, correct it, label queued scans, read the run
reports. One FastAPI app on uvicorn, loopback only by default; its routes, errors and guards are in docs/app.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.staticfiles import StaticFiles

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL
from mnist_pipeline.predict.preprocess import MNIST_SHAPE
from mnist_pipeline.web.champion import ChampionWatch, NoChampion
from mnist_pipeline.web.feedback import (
    DEFAULT_THRESHOLD,
    Submission,
    TooFewCorrections,
    list_corrections,
    save_correction,
    start_gate,
    submit_corrections,
)
from mnist_pipeline.web.files import ReportFiles
from mnist_pipeline.web.guards import DEFAULT_MAX_BODY, BodyLimit, SameOriginChanges
from mnist_pipeline.web.links import LOOPBACK_HOSTS, REPORTS_PATH
from mnist_pipeline.web.predictions import UploadError, answer_uploads, prepare_upload, read_uploads
from mnist_pipeline.web.review import ReviewDesk, add_review_routes

STATIC_DIR = Path(__file__).parent / "static"
DIGITS = tuple(str(digit) for digit in range(10))


def parse_label(value: str | None) -> int:
    """The `label` query value as a digit; UploadError (422) for anything but one digit 0..9."""
    if value is None or value.strip() not in DIGITS:
        raise UploadError(422, f"label: expected one digit 0..9 in ?label=, found {value!r}")
    return int(value)


def describe_submission(submission: Submission) -> dict[str, Any]:
    return {"id": submission.batch_id, "rows": submission.rows, "problems": submission.problems}


def describe_dropped(dropped: list[str]) -> str:
    """`; N repeated corrections dropped ...` for a message, or nothing."""
    if not dropped:
        return ""
    plural = "correction" if len(dropped) == 1 else "corrections"
    return f"; {len(dropped)} repeated {plural} dropped (the gate refuses a batch with an image it has seen)"


class FeedbackDesk:
    """Saves corrections and lands them as a batch once `threshold` are waiting; the review page's labels wait in
    their own `folder` and are landed the same way."""

    def __init__(
        self, layout: DataLayout, threshold: int, start: Callable[[DataLayout], Path], folder: Path | None = None
    ) -> None:
        self.layout = layout
        self.folder = folder or layout.feedback
        self.threshold = threshold
        self.start = start

    def record(self, label: int, name: str, data: bytes) -> dict[str, Any]:
        path = save_correction(self.layout, label, prepare_upload(name, data, MNIST_SHAPE))
        waiting = len(list_corrections(self.folder))
        result: dict[str, Any] = {
            "label": label,
            "saved": str(path.relative_to(self.layout.root)),
            "waiting": waiting,
            "threshold": self.threshold,
            "batch": None,
            "dropped": [],
        }
        if waiting >= self.threshold:
            try:
                sent = self.submit(f"saved as a {label}; ")
            except TooFewCorrections as exc:
                message = (
                    f"saved as a {label}; {exc.waiting} different corrections waiting, a batch needs {exc.minimum}"
                    f"{describe_dropped(exc.dropped)}"
                )
                return {**result, "waiting": exc.waiting, "dropped": exc.dropped, "message": message}
            if sent["batch"] is not None:
                return {**result, **sent}
            waiting = len(list_corrections(self.folder))  # a request beside this one sent them all meanwhile
        plural = "correction" if waiting == 1 else "corrections"
        return {
            **result,
            "waiting": waiting,
            "message": f"saved as a {label}; {waiting} {plural} waiting, a batch goes to the gate at {self.threshold}",
        }

    def submit(self, prefix: str = "") -> dict[str, Any]:
        submission = submit_corrections(self.layout, self.start, self.folder)
        if submission is None:
            return {"waiting": 0, "batch": None, "message": f"{prefix}no corrections waiting"}
        return {
            "waiting": len(list_corrections(self.folder)),
            "batch": describe_submission(submission),
            "dropped": submission.dropped,
            "message": (
                f"{prefix}{submission.rows} corrections went to the gate as batch {submission.batch_id} "
                f"(mnist-pipeline add-data --pending checks them; log: {submission.log})"
                f"{describe_dropped(submission.dropped)}"
            ),
        }


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_app(
    layout: DataLayout,
    reports_dir: Path,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
    model: str = DEFAULT_PREDICT_MODEL,
    max_body: int = DEFAULT_MAX_BODY,
    feedback_threshold: int = DEFAULT_THRESHOLD,
    review_threshold: int = defaults.REVIEW_BATCH,
    review_idle_seconds: float = 60 * defaults.REVIEW_IDLE_MINUTES,
    gate: Callable[[DataLayout], Path] = start_gate,
) -> FastAPI:
    """The app for one data dir (champion, inbox) and one reports folder; `gate` starts the gate on landed
    corrections (the detached `add-data --pending` unless a test says otherwise)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    watch = ChampionWatch(layout, model)
    desk = FeedbackDesk(layout, feedback_threshold, gate)
    app = FastAPI(title="mnist-pipeline", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(SameOriginChanges)  # inside the Host check: it compares Origin with a trusted Host
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(UploadError)
    async def refuse_upload(request: Request, exc: UploadError) -> JSONResponse:
        return error_response(exc.status, str(exc))

    @app.exception_handler(TooFewCorrections)
    async def refuse_small_batch(request: Request, exc: TooFewCorrections) -> JSONResponse:
        message = f"{exc}{describe_dropped(exc.dropped)}; they wait for more"
        return JSONResponse({"error": message, "waiting": exc.waiting, "dropped": exc.dropped}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def refuse_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        return error_response(422, f"expected a valid request, found: {found}")

    @app.exception_handler(NoChampion)
    async def refuse_without_champion(request: Request, exc: NoChampion) -> JSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(HTTPException)
    async def refuse_http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.post("/api/predict")
    async def predict(request: Request, answer_all: bool = False) -> JSONResponse:
        uploads = await read_uploads(request)
        return JSONResponse(await run_in_threadpool(lambda: answer_uploads(watch.current(), uploads, answer_all)))

    @app.post("/api/feedback")
    async def feedback(request: Request, label: str | None = None) -> JSONResponse:
        digit = parse_label(label)
        uploads = await read_uploads(request)
        if len(uploads) != 1:
            raise UploadError(400, f"feedback: expected one picture with its label, found {len(uploads)}")
        ((name, data),) = uploads
        return JSONResponse(await run_in_threadpool(desk.record, digit, name, data))

    @app.post("/api/feedback/submit")
    async def submit_feedback() -> JSONResponse:
        return JSONResponse(await run_in_threadpool(desk.submit))

    @app.get("/api/model")
    async def current_model() -> JSONResponse:
        serving = await run_in_threadpool(watch.current)
        return JSONResponse({**serving.describe(), "model_path": str(serving.choice.path)})

    @app.get("/healthz")
    async def health() -> JSONResponse:
        try:
            serving = await run_in_threadpool(watch.current)
        except NoChampion as exc:
            return JSONResponse({"status": "ok", "champion": None, "problem": str(exc)})
        return JSONResponse({"status": "ok", "champion": serving.describe()})

    labels = FeedbackDesk(layout, review_threshold, gate, layout.reviewed)
    reviews = ReviewDesk(layout, review_threshold, labels.submit, review_idle_seconds)
    add_review_routes(app, reviews, STATIC_DIR / "review.html")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(REPORTS_PATH, ReportFiles(directory=reports_dir, html=True), name="reports")
    return app
