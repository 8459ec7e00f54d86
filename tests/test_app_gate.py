"""Corrections and review labels sent from the web app go through the real gate: the app lands each kind as one
batch and starts `mnist-pipeline add-data --pending` detached, which judges it against the real Prefect server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.increments.hashes import hash_images
from mnist_pipeline.increments.inbox import list_pending
from mnist_pipeline.review.queue import ReviewQueue, to_ids
from tests.app_support import request, serving
from tests.drawing import DIGIT_STROKES
from tests.predict_support import draw_digits

GATE_TIMEOUT = 300


def draw_digit_png(digit: int) -> bytes:
    canvas = Image.new("L", (280, 280), 0)
    for stroke in DIGIT_STROKES[digit]:
        ImageDraw.Draw(canvas).line(stroke, fill=255, width=18, joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def review_ten_scans(port: int, layout: DataLayout) -> None:
    """Queue ten unlabelled digits and label each on the review API: the tenth label sends them to the gate."""
    images, labels = draw_digits(10, seed=21)
    ReviewQueue(layout).add(images, [f"scan-{index}.png" for index in range(10)], "office C")
    status, _, body = request(port, "GET", "/api/review/next?limit=10")
    assert status == 200, body
    truth = dict(zip(to_ids(hash_images(images)), labels.tolist(), strict=True))
    for item in json.loads(body):
        label = json.dumps({"label": truth[item["id"]]}).encode()
        status, _, answer = request(
            port, "POST", f"/api/review/{item['id']}", label, {"Content-Type": "application/json"}
        )
        assert status == 200, answer


def test_a_full_batch_of_corrections_and_one_of_review_labels_are_judged_by_the_gate(
    prefect_server: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    mnist_pipeline = str(Path(sys.executable).with_name("mnist-pipeline"))
    ingest = [mnist_pipeline, "ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(data_dir)]
    done = subprocess.run(ingest, capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    layout = DataLayout(data_dir)
    with serving(data_dir, tmp_path / "reports", feedback_threshold=10, review_threshold=10) as port:
        review_ten_scans(port, layout)
        for digit in range(10):
            status, _, body = request(port, "POST", f"/api/feedback?label={digit}", draw_digit_png(digit))
            assert status == 200, body
    answer = json.loads(body)
    batch_id = answer["batch"]["id"]
    assert answer["message"].startswith(f"saved as a 9; 10 corrections went to the gate as batch {batch_id}")
    deadline = time.monotonic() + GATE_TIMEOUT
    while list_pending(layout) and time.monotonic() < deadline:
        time.sleep(1)
    log = (layout.inbox / "feedback-gate.log").read_text()
    manifest = layout.increments / batch_id / "manifest.json"
    assert manifest.is_file(), f"batch {batch_id} was not accepted; the gate's log:\n{log[-3000:]}"
    accepted = json.loads(manifest.read_text())
    assert accepted["note"] == "feedback"
    assert sum(accepted["labels"]["train"]) + sum(accepted["labels"]["test"]) == 10
    (reviewed,) = [path for path in layout.increments.glob("b-*/manifest.json") if path.parent.name != batch_id]
    accepted = json.loads(reviewed.read_text())
    assert accepted["note"] == "reviewed"
    assert sum(accepted["labels"]["train"]) + sum(accepted["labels"]["test"]) == 10
