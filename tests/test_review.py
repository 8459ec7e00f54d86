"""The review queue: `add-scans` through the CLI, the review order and its audit share, the Wilson interval, and
the review API on the real app (Starlette's TestClient, real guards, real ONNX engine of a constant champion)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.files.atomic import write_json_atomic
from mnist_pipeline.increments.hashes import append_to_index, hash_images, is_test_part, read_index
from mnist_pipeline.increments.inbox import list_pending, read_pending, refuse_batch
from mnist_pipeline.modeling.serving import open_engine
from mnist_pipeline.review.queue import REQUEUED_FILE, ReviewQueue, to_ids
from mnist_pipeline.review.sampling import AUDIT_EVERY, estimate_accuracy, is_audit, order_for_review
from mnist_pipeline.web.app import build_app
from mnist_pipeline.web.review import UNKNOWN, ParsedFiles, ReviewDesk
from tests.app_support import promote_constant_model
from tests.increment_support import publish_base
from tests.predict_support import draw_digits

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note that httpx is deprecated for its test client
    from starlette.testclient import TestClient

THRESHOLD = 12


def ids(count: int) -> list[str]:
    return [f"{index:032x}" for index in range(count)]


def test_the_least_sure_come_first_with_an_audit_image_at_every_tenth_place() -> None:
    confidences = {item: (index % 97 + 1) / 98 for index, item in enumerate(ids(2000))}
    confidences[ids(2000)[5]] = None  # not scored yet: before all
    order = order_for_review(confidences)
    assert sorted(order) == sorted(confidences)
    audit = [is_audit(item) for item in order]
    places = [place for place, flag in enumerate(audit) if flag]
    assert places[:50] == list(range(AUDIT_EVERY - 1, 50 * AUDIT_EVERY, AUDIT_EVERY))
    rest = [confidences[item] or 0 for item in order if not is_audit(item)]
    assert rest == sorted(rest) and order[0] == ids(2000)[5]


def test_the_audit_share_is_a_seeded_tenth_whatever_the_confidence_or_the_80_20_part() -> None:
    shas = hash_images(np.random.default_rng(1).integers(0, 256, (20000, 28, 28), dtype=np.uint8))
    audit = np.array([is_audit(item) for item in to_ids(shas)])
    assert abs(audit.mean() - 1 / AUDIT_EVERY) < 0.01
    assert abs(audit[is_test_part(shas)].mean() - 1 / AUDIT_EVERY) < 0.015  # as many in the gate's test part
    assert list(audit) == [is_audit(item) for item in to_ids(shas)]  # no state, no clock
    low = dict.fromkeys(ids(2000), 0.1)
    high = dict.fromkeys(ids(2000), 0.99)
    assert [is_audit(item) for item in order_for_review(low)] == [is_audit(item) for item in order_for_review(high)]


def test_the_wilson_interval_matches_known_values_and_covers_the_truth() -> None:
    assert estimate_accuracy(0, 0).accuracy is None
    eight = estimate_accuracy(8, 10)
    assert (round(eight.low, 4), round(eight.high, 4)) == (0.4902, 0.9433)
    perfect = estimate_accuracy(100, 100)
    assert perfect.high == 1.0 and round(perfect.low, 4) == 0.963
    rng = np.random.default_rng(0)
    for truth in (0.75, 0.95, 0.99):
        draws = rng.binomial(200, truth, size=2000)
        found = {right: estimate_accuracy(int(right), 200) for right in np.unique(draws)}  # each count once
        assert np.mean([found[right].low <= truth <= found[right].high for right in draws]) >= 0.93


@pytest.fixture()
def layout(tmp_path: Path) -> DataLayout:
    layout, _ = publish_base(tmp_path / "data", train_rows=100, test_rows=50)
    return layout


@pytest.fixture()
def champion(layout: DataLayout) -> str:
    return promote_constant_model(layout.root, 3, "2026-12-01T10:00:00+00:00")


def write_pngs(folder: Path, images: np.ndarray, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images, start):
        Image.fromarray(255 - image).save(folder / f"scan-{index:03d}.png")  # dark ink on paper, as scanned


def add_scans(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, as a user runs it: Prefect sets up its logging there, not in pytest's."""
    command = [str(Path(sys.executable).with_name("mnist-pipeline")), "add-scans", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_add_scans_queues_each_new_image_once_scored_and_says_what_it_skipped(
    prefect_server: str, layout: DataLayout, champion: str, tmp_path: Path
) -> None:
    """Through the CLI, which runs the review-intake flow on the test server and publishes the queue's artifact."""
    from prefect.artifacts import Artifact

    scans = tmp_path / "scans" / "deep" / "er"
    digits, _ = draw_digits(12, seed=5)
    write_pngs(scans, digits)
    write_pngs(scans, digits[:1], start=50)  # the same picture twice
    test_images = read_split(layout.split_file("test")).images
    Image.fromarray(test_images[0]).save(scans / "leaked.png")
    accepted = digits[11:12]
    append_to_index(layout, read_index(layout), hash_images(accepted), np.array([False]), "i-1")
    (scans / "broken.png").write_bytes(b"not a picture")
    data_dir = ["--data-dir", str(layout.root)]
    done = add_scans(str(tmp_path / "scans"), "--note", "office B", *data_dir)
    assert done.returncode == 0, done.stderr
    assert f"queued: 11 in {layout.review}; skipped: 1 already queued, 1 equal to an MNIST test image, " in done.stdout
    assert "1 already accepted; unreadable: 1" in done.stdout
    assert f"scored: 11 with the cnn champion (key {champion})" in done.stdout
    # One line per unreadable file, as `predict` prints it (the other lines are the flow run's log).
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("mnist-pipeline:")]
    assert line.startswith(f"mnist-pipeline: {scans / 'broken.png'}: expected an image Pillow can read")
    items = ReviewQueue(layout).read_items()
    assert len(items) == 11 and {item["note"] for item in items.values()} == {"office B"}
    assert {ReviewQueue(layout).read_scores().answers[item]["predicted"] for item in items} == {3}
    artifact = Artifact.get("review-queue")
    assert artifact is not None and str(artifact.data).startswith("# Review queue\n\n11 images waiting for a label")
    key = promote_constant_model(layout.root, 5, "2026-12-02T10:00:00+00:00")
    write_pngs(tmp_path / "scans" / "more", draw_digits(1, seed=6)[0])
    out = add_scans(str(tmp_path / "scans"), *data_dir).stdout  # the same folder again, one new scan in it
    assert f"queued: 1 in {layout.review}" in out  # each image is queued once: only the new one joins
    assert "scored: 12" in out  # a new champion scores the whole queue
    assert ReviewQueue(layout).read_scores().model_key == key
    nothing = add_scans(str(tmp_path / "nothing-here"), *data_dir)
    assert nothing.returncode == 2
    assert "no such path" in nothing.stderr
    assert "expected a readable image, found none (1 unreadable)" in nothing.stderr


class GateRecorder:
    def __init__(self) -> None:
        self.starts = 0

    def __call__(self, layout: DataLayout) -> Path:
        self.starts += 1
        return layout.inbox / "gate.log"


@pytest.fixture()
def queued(layout: DataLayout, champion: str) -> list[str]:
    digits, _ = draw_digits(40, seed=8)
    ReviewQueue(layout).add(digits, [f"scan-{index}.png" for index in range(40)], None)
    ReviewQueue(layout).score(open_engine(layout, "cnn", champion), champion)
    return ReviewQueue(layout).list_queued()


@pytest.fixture()
def gate() -> GateRecorder:
    return GateRecorder()


@pytest.fixture()
def client(layout: DataLayout, gate: GateRecorder, tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(layout, tmp_path / "reports", review_threshold=THRESHOLD, gate=gate)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_two_reviewers_never_get_the_same_image(client: TestClient, queued: list[str]) -> None:
    first = client.get("/api/review/next?limit=15").json()
    second = client.get("/api/review/next", params={"limit": 100}).json()
    assert len(first) == 15 and len(second) == len(queued) - 15
    assert not {item["id"] for item in first} & {item["id"] for item in second}
    assert {"id", "source", "predicted", "confidence", "audit"} <= set(first[0]) <= {"id", *UNKNOWN, "audit"}
    assert [item["audit"] for item in first] == [is_audit(item["id"]) for item in first]
    assert client.get("/api/review/next").json() == []  # everything is leased


def test_a_label_is_on_disk_when_answered_and_undo_puts_it_back(
    client: TestClient, layout: DataLayout, queued: list[str]
) -> None:
    first, second = client.get("/api/review/next?limit=2").json()
    answer = client.post(f"/api/review/{first['id']}", json={"label": 7})
    assert answer.status_code == 200 and answer.json()["waiting"] == 1
    assert (layout.reviewed / "7" / f"{first['id']}.png").is_file()
    assert client.post(f"/api/review/{second['id']}", json={"unreadable": True}).status_code == 200
    assert (layout.review / "unreadable" / f"{second['id']}.png").is_file()
    status = client.get("/api/review/status").json()
    assert (status["reviewed"], status["left"], status["waiting"]) == (2, len(queued) - 2, 1)
    assert client.post(f"/api/review/{second['id']}", json={"undo": True}).status_code == 200
    assert ReviewQueue(layout).image_file(second["id"]).is_file()
    assert client.get(f"/api/review/{second['id']}/image").headers["content-type"] == "image/png"


def test_a_label_moved_while_the_queue_was_listed_is_not_handed_out_again(
    layout: DataLayout, queued: list[str]
) -> None:
    """The race a reviewer met: `next` listed the queue, then a label moved one of its images out and released its
    lease. A listing taken before the move must not hand that image out again."""
    desk = ReviewDesk(layout, threshold=THRESHOLD, submit=dict, idle_seconds=600)
    (first,) = desk.hand_out(limit=1)
    listed = desk.queue.list_queued()
    desk.review(first["id"], 4)

    class ListedBeforeTheLabel(ReviewQueue):
        def list_queued(self) -> list[str]:
            return listed

    desk.queue = ListedBeforeTheLabel(layout)
    handed = [item["id"] for item in desk.hand_out(limit=100)]
    assert first["id"] not in handed and sorted(handed) == sorted(set(queued) - {first["id"]})


def test_the_desk_parses_a_queue_file_again_only_when_it_was_replaced(tmp_path: Path) -> None:
    files, path = ParsedFiles(), tmp_path / "scores.json"
    assert files.read(path, {"none": 1}) == {"none": 1}
    write_json_atomic(path, {"answers": {"a": 1}})
    first = files.read(path, {})
    assert first == {"answers": {"a": 1}} and files.read(path, {}) is first  # unchanged: not parsed again
    write_json_atomic(path, {"answers": {"a": 1}})  # the same bytes, written anew as the queue writes
    assert files.read(path, {}) is not first
    write_json_atomic(path, {"answers": {"b": 2}})
    assert files.read(path, {}) == {"answers": {"b": 2}}


BAD_REQUESTS = [
    ("GET", "/api/review/next?limit=0", None, 422),
    ("GET", "/api/review/next?limit=many", None, 422),
    ("GET", "/api/review/../../etc/image", None, 404),
    ("GET", "/api/review/not-an-id/image", None, 422),
    ("GET", f"/api/review/{'0' * 32}/image", None, 404),
    ("POST", f"/api/review/{'0' * 32}", b'{"label": 3}', 409),
    ("POST", "QUEUED", b'{"label": 10}', 422),
    ("POST", "QUEUED", b'{"label": "3"}', 422),
    ("POST", "QUEUED", b'{"label": 3, "unreadable": true}', 422),
    ("POST", "QUEUED", b'{"unreadable": false}', 422),
    ("POST", "QUEUED", b"{label: 3}", 400),
    ("POST", "QUEUED", b"", 400),
    ("POST", "QUEUED", b'{"undo": true}', 409),
    ("POST", "/api/review/submit", None, 422),  # fewer labels waiting than the gate takes
]


def test_bad_requests_are_a_4xx_with_a_json_error(client: TestClient, queued: list[str]) -> None:
    client.post(f"/api/review/{queued[1]}", json={"label": 1})
    for method, path, body, status in BAD_REQUESTS:
        answer = client.request(method, f"/api/review/{queued[0]}" if path == "QUEUED" else path, content=body)
        assert (answer.status_code, bool(answer.json()["error"])) == (status, True), (path, body, answer.text)


def test_the_app_guards_apply(client: TestClient, queued: list[str]) -> None:
    other_site = client.post(f"/api/review/{queued[0]}", json={"label": 1}, headers={"Origin": "http://evil.test"})
    assert other_site.status_code == 403 and "Origin" in other_site.json()["error"]
    too_big = client.post(f"/api/review/{queued[0]}", content=b" " * (3 * 1024 * 1024))
    assert too_big.status_code == 413
    assert client.get("/api/review/status", headers={"Host": "evil.test"}).status_code == 400


@pytest.mark.e2e  # waits out a real idle clock: seconds, kept out of `make test-fast`
def test_labels_go_to_the_gate_when_the_reviewer_stops(
    layout: DataLayout, gate: GateRecorder, queued: list[str], tmp_path: Path
) -> None:
    app = build_app(layout, tmp_path / "reports", review_threshold=100, review_idle_seconds=2.0, gate=gate)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for item in client.get("/api/review/next?limit=11").json():
            assert client.post(f"/api/review/{item['id']}", json={"label": 4}).status_code == 200
        assert (gate.starts, len(list_pending(layout))) == (0, 0)  # under the batch size: nothing sent yet
        deadline = time.monotonic() + 10
        while not gate.starts and time.monotonic() < deadline:
            time.sleep(0.05)
    (batch_id,) = list_pending(layout)
    assert (len(read_pending(layout, batch_id).names), gate.starts) == (11, 1)


def test_labels_go_to_the_gate_by_the_threshold_and_a_refused_batch_comes_back(
    client: TestClient, layout: DataLayout, gate: GateRecorder, queued: list[str]
) -> None:
    items = client.get(f"/api/review/next?limit={THRESHOLD}").json()
    for item in items:
        assert client.post(f"/api/review/{item['id']}", json={"label": 4}).status_code == 200
    deadline = time.monotonic() + 10
    while not gate.starts and time.monotonic() < deadline:  # landed beside the request, then the gate started
        time.sleep(0.05)
    (batch_id,) = list_pending(layout)
    batch = read_pending(layout, batch_id)
    assert (batch.meta["note"], len(batch.names), gate.starts) == ("reviewed", THRESHOLD, 1)
    assert sorted(to_ids(batch.shas)) == sorted(item["id"] for item in items)  # the very images queued
    assert client.get("/api/review/status").json()["waiting"] == 0
    refuse_batch(layout, batch_id, ["class shares: expected each class 2 %..25 %, found 4 at 30 %"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (layout.refused / batch_id / REQUEUED_FILE).is_file():
        client.get("/api/review/status")  # the desk notices the refusal and puts the images back
        time.sleep(0.05)
    status = client.get("/api/review/status").json()
    assert status["left"] == len(queued)
    assert status["refused"] == [f"batch {batch_id}: class shares: expected each class 2 %..25 %, found 4 at 30 %"]
    back = {item["id"]: item for item in client.get("/api/review/next?limit=100").json()}
    assert all(back[item["id"]]["refused"].startswith(f"batch {batch_id}") for item in items)
    assert (layout.refused / batch_id / REQUEUED_FILE).is_file()


def test_the_audit_estimate_counts_the_current_champion_and_a_new_champion_rescores(
    client: TestClient, layout: DataLayout, queued: list[str]
) -> None:
    items = client.get("/api/review/next?limit=100").json()
    audit = [item for item in items if item["audit"]]
    assert audit, "the fixture's 40 images hold no audit image"
    for label, item in zip([3, 5] * len(audit), audit, strict=False):
        client.post(f"/api/review/{item['id']}", json={"label": label})
    status = client.get("/api/review/status").json()
    estimate = status["audit"]
    right = sum(label == 3 for label, _ in zip([3, 5] * len(audit), audit, strict=False))
    assert (estimate["count"], estimate["correct"]) == (len(audit), right)
    assert estimate["low"] <= estimate["accuracy"] <= estimate["high"]
    # The champion (probability 0.9975, judged alone: threshold 0.995) was sure of every one of them.
    assert {key: status["audit_answered"][key] for key in ("count", "correct")} == {
        "count": len(audit),
        "correct": right,
    }
    key = promote_constant_model(layout.root, 6, "2026-12-02T10:00:00+00:00")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ReviewQueue(layout).read_scores().model_key != key:
        client.get("/api/review/status")
        time.sleep(0.05)
    assert ReviewQueue(layout).read_scores().model_key == key
    assert {item["predicted"] for item in client.get("/api/review/next?limit=5").json()} <= {6}
    assert client.get("/api/review/status").json()["audit"]["count"] == 0  # none yet for the new champion


def test_the_review_page_is_served(client: TestClient) -> None:
    page = client.get("/review")
    assert page.status_code == 200 and "/static/review.js" in page.text
    assert client.get("/static/review.js").status_code == 200
    assert json.loads(client.get("/api/review/status").content)["left"] == 0
