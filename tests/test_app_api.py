"""The web app's API on a real uvicorn: answers in the `predict --format json` shape, a new champion picked up
without a restart, corrections saved in the inbox and landed as a batch, and a JSON 4xx for each bad input."""

from __future__ import annotations

import base64
import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.limits import MAX_IMAGE_PIXELS
from mnist_pipeline.increments.hashes import append_to_index, hash_images, read_index
from mnist_pipeline.increments.inbox import land_batch, list_pending, read_pending
from mnist_pipeline.increments.sources import read_labelled_batch
from tests.app_support import SEVEN, draw_png, promote_constant_model, request, serving

PNG = {"Content-Type": "image/png"}
THRESHOLD = 12  # above the gate's minimum of 10, which an on-demand submission must reach


class GateRecorder:
    """Stands in for the detached `add-data --pending`: records each start, so the landed batch stays put."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.starts: list[Path] = []

    def __call__(self, layout: DataLayout) -> Path:
        self.starts.append(layout.root)
        return self.log


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture()
def gate(tmp_path: Path) -> GateRecorder:
    return GateRecorder(tmp_path / "gate.log")


@pytest.fixture()
def app(data_dir: Path, tmp_path: Path, gate: GateRecorder) -> Iterator[int]:
    with serving(data_dir, tmp_path / "reports", feedback_threshold=THRESHOLD, gate=gate) as port:
        yield port


@pytest.fixture()
def champion(data_dir: Path) -> str:
    return promote_constant_model(data_dir, 3, "2026-12-01T10:00:00+00:00")


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, object]:
    status, _, raw = request(port, "POST", path, body, {**PNG, **(headers or {})})
    return status, json.loads(raw)


def multipart(files: list[tuple[str, bytes]], boundary: str = "drawings") -> tuple[bytes, dict[str, str]]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def encode(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def distinct_image(seed: int) -> np.ndarray:
    """A 28x28 picture of its own (a framed random pattern), which no other seed's matches after preprocessing."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[8:20, 8:20] = np.random.default_rng(seed).integers(0, 2, (12, 12)) * 255
    image[[8, 19], 8:20] = 255
    return image


def distinct_png(seed: int) -> bytes:
    return encode(Image.fromarray(distinct_image(seed)), "PNG")


def test_an_answer_has_the_predict_json_shape_and_the_image_seen(app: int, champion: str, data_dir: Path) -> None:
    status, records = post(app, "/api/predict", draw_png(SEVEN))
    assert status == 200
    (record,) = records
    assert {key: record[key] for key in ("input", "label", "model", "model_key")} == {
        "input": "body",
        "label": 3,
        "model": "cnn",
        "model_key": champion,
    }
    assert record["model_path"] == str(DataLayout(data_dir).model_file("cnn", champion))
    assert [item["label"] for item in record["top3"]] == [3, 4, record["top3"][2]["label"]]
    assert record["probability"] == record["top3"][0]["probability"] > 0.995
    assert record["unsure"] is False
    assert record["champion_since"] == "2026-12-01T10:00:00+00:00"
    prefix = "data:image/png;base64,"
    assert record["image"].startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(record["image"].removeprefix(prefix)))) as seen:
        pixels = np.asarray(seen)
    assert (seen.mode, pixels.shape) == ("L", (28, 28))
    assert pixels.max() == 255 and pixels[0].max() == 0  # MNIST style: light ink inside a black border


def test_an_unsure_answer_has_no_label_but_its_top_3_and_answer_all_answers_it(app: int, data_dir: Path) -> None:
    promote_constant_model(data_dir, 6, "2026-12-01T10:00:00+00:00", temperature=1.0)
    status, (record,) = post(app, "/api/predict", draw_png(SEVEN))
    assert status == 200
    assert (record["label"], record["unsure"]) == (None, True)
    assert [item["label"] for item in record["top3"]][:2] == [6, 7]
    assert record["probability"] == pytest.approx(0.9501, abs=0.0001)
    status, (record,) = post(app, "/api/predict?answer_all=true", draw_png(SEVEN))
    assert (status, record["label"], record["unsure"]) == (200, 6, False)


@pytest.mark.parametrize("ink", [255, 0])
def test_jpeg_and_either_polarity_are_answered(app: int, champion: str, ink: int) -> None:
    with Image.open(io.BytesIO(draw_png(SEVEN, ink=ink))) as drawing:
        body = encode(drawing.convert("RGB"), "JPEG")
    status, records = post(app, "/api/predict", body, {"Content-Type": "image/jpeg"})
    assert status == 200 and records[0]["label"] == 3


def test_multipart_answers_every_file_in_order(app: int, champion: str) -> None:
    body, headers = multipart([("first.png", draw_png(SEVEN)), ("second.png", draw_png([(140, 40), (140, 240)]))])
    status, records = post(app, "/api/predict", body, headers)
    assert status == 200
    assert [record["input"] for record in records] == ["first.png", "second.png"]


def test_a_new_champion_answers_without_a_restart(app: int, data_dir: Path) -> None:
    status, body = post(app, "/api/predict", draw_png(SEVEN))
    assert status == 503
    assert "expected a champion for model 'cnn', found none" in body["error"]
    first = promote_constant_model(data_dir, 3, "2026-12-01T10:00:00+00:00")
    assert post(app, "/api/predict", draw_png(SEVEN))[1][0]["label"] == 3
    second = promote_constant_model(data_dir, 7, "2026-12-01T11:00:00+00:00")
    status, records = post(app, "/api/predict", draw_png(SEVEN))
    assert (status, records[0]["label"], records[0]["model_key"]) == (200, 7, second)
    model = json.loads(request(app, "GET", "/api/model")[2])
    assert (model["model_key"], model["champion_since"]) == (second, "2026-12-01T11:00:00+00:00")
    assert first != second


def test_model_and_health(app: int, data_dir: Path) -> None:
    status, _, body = request(app, "GET", "/api/model")
    assert status == 503 and "error" in json.loads(body)
    assert json.loads(request(app, "GET", "/healthz")[2])["champion"] is None
    key = promote_constant_model(data_dir, 5, "2026-12-01T10:00:00+00:00")
    health = json.loads(request(app, "GET", "/healthz")[2])
    assert (health["status"], health["champion"]["model_key"]) == ("ok", key)


def pgm(size: int = 28) -> bytes:
    """A grey-map picture Pillow decodes, in a format the app does not take."""
    pixels = np.zeros((size, size), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    return f"P5 {size} {size} 255\n".encode() + pixels.tobytes()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"", 400, "found an empty body"),
        (b"this is not a picture", 415, "body: expected an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WEBP)"),
        (
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n",
            415,
            "body: expected an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WEBP)",
        ),
        (pgm(), 415, "body: expected an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WEBP)"),
        (draw_png([]), 422, "found an empty drawing"),
        (encode(Image.new("RGB", (64, 64), (200, 200, 200)), "PNG"), 422, "found an empty drawing"),
        (encode(Image.new("1", (5000, 5000)), "PNG"), 415, f"at most {MAX_IMAGE_PIXELS:,} pixels"),
    ],
    ids=["empty-body", "text", "postscript", "pgm", "blank-canvas", "grey-card", "25-megapixel-bomb"],
)
def test_bad_pictures_are_a_json_4xx(app: int, champion: str, body: bytes, status: int, says: str) -> None:
    got, answer = post(app, "/api/predict", body)
    assert got == status, answer
    assert says in answer["error"]
    assert "\n" not in answer["error"]


def test_a_body_over_the_limit_is_refused_by_its_declared_length(app: int) -> None:
    status, answer = post(app, "/api/predict", b"\0" * (2 * 1024 * 1024 + 1))
    assert status == 413
    assert answer["error"] == "request body: expected at most 2 MB, found 2097153 bytes (Content-Length)"


def test_a_streamed_body_over_the_limit_is_cut_off(app: int) -> None:
    """No Content-Length (chunked): the app stops reading once the body passes the limit."""
    chunk = b"\0" * 65536
    connection = http.client.HTTPConnection("127.0.0.1", app, timeout=30)
    connection.request("POST", "/api/predict", body=iter([chunk] * 40), headers=PNG, encode_chunked=True)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413
    assert answer["error"].startswith("request body: expected at most 2 MB, found more than that")


def test_multipart_without_files_or_with_a_bad_one(app: int, champion: str) -> None:
    status, answer = post(app, "/api/predict", b"--b--\r\n", {"Content-Type": "multipart/form-data; boundary=b"})
    assert (status, answer["error"]) == (400, "multipart body: expected one or more image files, found none")
    body, headers = multipart([("good.png", draw_png(SEVEN)), ("notes.txt", b"hello")])
    status, answer = post(app, "/api/predict", body, headers)
    assert status == 415 and answer["error"].startswith("notes.txt: expected an image Pillow can read (PNG,")


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def test_a_correction_lands_in_the_feedback_folder(app: int, data_dir: Path, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    status, answer = post(app, "/api/feedback?label=7", draw_png(SEVEN))
    assert status == 200, answer
    (saved,) = files_under(tmp_path) - before
    assert saved.parent == DataLayout(data_dir).feedback / "7"
    assert answer["saved"] == str(saved.relative_to(data_dir))
    assert answer["message"] == f"saved as a 7; 1 correction waiting, a batch goes to the gate at {THRESHOLD}"
    with Image.open(saved) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))


@pytest.mark.parametrize("query", ["", "?label=", "?label=10", "?label=-1", "?label=a", "?label=../../x", "?label=1.0"])
def test_a_label_outside_0_to_9_is_refused_and_nothing_is_written(app: int, tmp_path: Path, query: str) -> None:
    before = files_under(tmp_path)
    status, answer = post(app, f"/api/feedback{query}", draw_png(SEVEN))
    assert status == 422
    assert answer["error"].startswith("label: expected one digit 0..9 in ?label=, found ")
    assert files_under(tmp_path) == before


def test_a_hostile_file_name_writes_nowhere_else(app: int, data_dir: Path, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    body, headers = multipart([("../../../../outside.png", draw_png(SEVEN))])
    status, _ = post(app, "/api/feedback?label=2", body, headers)
    assert status == 200
    (saved,) = files_under(tmp_path) - before
    assert saved.parent == DataLayout(data_dir).feedback / "2"


def test_an_empty_drawing_is_not_a_correction(app: int, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    assert post(app, "/api/feedback?label=4", draw_png([]))[0] == 422
    assert files_under(tmp_path) == before


def test_at_the_threshold_the_corrections_go_to_the_gate_as_one_batch(
    app: int, data_dir: Path, gate: GateRecorder
) -> None:
    layout = DataLayout(data_dir)
    for seed in range(THRESHOLD - 1):
        assert post(app, f"/api/feedback?label={seed % 10}", distinct_png(seed))[0] == 200
    assert list_pending(layout) == [] and gate.starts == []
    status, answer = post(app, "/api/feedback?label=4", distinct_png(THRESHOLD))
    assert status == 200
    (batch_id,) = list_pending(layout)
    assert answer["batch"]["id"] == batch_id and answer["batch"]["rows"] == THRESHOLD
    assert answer["message"].startswith(f"saved as a 4; {THRESHOLD} corrections went to the gate as batch {batch_id}")
    assert gate.starts == [data_dir]
    batch = read_pending(layout, batch_id)
    assert (batch.meta["note"], sorted(batch.labels.tolist())) == (
        "feedback",
        sorted([seed % 10 for seed in range(THRESHOLD - 1)] + [4]),
    )
    assert list(layout.feedback.rglob("*.png")) == []  # landed files are removed, nothing half-moved is left


def test_submit_on_demand(app: int, data_dir: Path, gate: GateRecorder) -> None:
    status, _, body = request(app, "POST", "/api/feedback/submit")
    assert (status, json.loads(body)["message"]) == (200, "no corrections waiting")
    for seed in range(10):
        assert post(app, f"/api/feedback?label={seed}", distinct_png(seed))[0] == 200
    status, _, body = request(app, "POST", "/api/feedback/submit")
    answer = json.loads(body)
    assert (status, answer["batch"]["rows"], answer["waiting"], answer["dropped"]) == (200, 10, 0, [])
    assert list_pending(DataLayout(data_dir)) == [answer["batch"]["id"]]
    assert len(gate.starts) == 1


def test_submitting_fewer_than_the_gate_takes_is_a_422_and_they_wait(
    app: int, data_dir: Path, gate: GateRecorder
) -> None:
    """The gate refuses a batch under its --min-images (10): landing one would only throw the corrections away."""
    for seed in range(9):
        assert post(app, f"/api/feedback?label={seed}", distinct_png(seed))[0] == 200
    status, _, body = request(app, "POST", "/api/feedback/submit")
    answer = json.loads(body)
    assert status == 422
    assert answer["error"] == (
        "feedback: expected at least 10 different corrections for a batch (the gate's --min-images), "
        "found 9 waiting; they wait for more"
    )
    assert list_pending(DataLayout(data_dir)) == [] and gate.starts == []
    assert len(list(DataLayout(data_dir).feedback.rglob("*.png"))) == 9


def test_repeated_corrections_are_dropped_not_the_batch(app: int, data_dir: Path, gate: GateRecorder) -> None:
    """The gate refuses a whole batch over one image seen twice, or seen in an accepted increment: the app drops
    those corrections (deleting their files, naming each) and sends the rest."""
    layout = DataLayout(data_dir)
    saved = [post(app, f"/api/feedback?label={seed % 10}", distinct_png(seed))[1]["saved"] for seed in range(11)]
    accepted = read_labelled_batch(layout.feedback)
    row = accepted.names.index(str(Path(saved[5]).relative_to("inbox/feedback")))
    shas = hash_images(accepted.images[row : row + 1])
    append_to_index(layout, read_index(layout), shas, np.array([False]), "b-20261201T000000-00000000")
    status, answer = post(app, "/api/feedback?label=3", distinct_png(0))  # the same drawing, another label
    assert status == 200, answer
    again = answer["saved"]
    assert answer["batch"]["rows"] == 10  # the 12th correction sent the batch: 12 waiting, 2 of them repeats
    repeat, known = (str(Path(path).relative_to("inbox")) for path in (again, saved[5]))
    assert sorted(answer["dropped"]) == sorted(
        [
            f"{repeat}: dropped, the same image as {Path(saved[0]).relative_to('inbox')}",
            f"{known}: dropped, the same image is accepted already or waiting in the inbox",
        ]
    )
    assert "2 repeated corrections dropped" in answer["message"]
    landed = read_pending(layout, answer["batch"]["id"])
    assert len(set(landed.shas.tolist())) == 10 and shas[0] not in set(landed.shas.tolist())
    assert not (data_dir / again).exists() and not (data_dir / saved[5]).exists()
    assert list(layout.feedback.rglob("*.png")) == []


def test_a_submission_killed_midway_is_picked_up_by_the_next(data_dir: Path, gate: GateRecorder) -> None:
    """Killed after moving its corrections to `.submitting-*`: the next submission moves them back and sends them;
    killed after landing them too: they are dropped as repeats of the waiting batch, not sent twice."""
    from mnist_pipeline.web import feedback

    layout = DataLayout(data_dir)
    for seed in range(20):
        feedback.save_correction(layout, seed % 10, distinct_image(seed))
    corrections = feedback.list_corrections(layout.feedback)
    landed_before, stranded = corrections[:10], corrections[10:]
    for name, paths in (("20261202T010000000000", landed_before), ("20261202T010001000000", stranded)):
        for path in paths:
            (layout.feedback / f".submitting-{name}" / path.parent.name).mkdir(parents=True, exist_ok=True)
            path.rename(layout.feedback / f".submitting-{name}" / path.parent.name / path.name)
    killed = layout.feedback / ".submitting-20261202T010000000000"
    first = land_batch(layout, read_labelled_batch(killed), source=str(layout.feedback), note="feedback")
    assert feedback.list_corrections(layout.feedback) == []  # all 20 stranded in hidden folders
    submission = feedback.submit_corrections(layout, gate)
    assert submission is not None
    assert (submission.rows, len(submission.dropped)) == (10, 10)
    assert all(line.endswith("accepted already or waiting in the inbox") for line in submission.dropped)
    second = read_pending(layout, submission.batch_id)
    assert set(second.shas.tolist()).isdisjoint(read_pending(layout, first).shas.tolist())
    assert sorted(second.names) == sorted(str(path.relative_to(layout.feedback)) for path in stranded)
    assert list(layout.feedback.rglob("*.png")) == []
    assert not any(path.name.startswith(".submitting") for path in layout.feedback.iterdir())


def test_a_landing_that_fails_puts_the_corrections_back(
    data_dir: Path, gate: GateRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_pipeline.web import feedback

    layout = DataLayout(data_dir)
    saved = [feedback.save_correction(layout, seed % 10, distinct_image(seed)) for seed in range(10)]

    def fail(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(feedback, "land_batch", fail)
    with pytest.raises(OSError, match="disk full"):
        feedback.submit_corrections(layout, gate)
    assert feedback.list_corrections(layout.feedback) == sorted(saved, key=lambda path: path.name)
    assert gate.starts == []
    assert not any(path.name.startswith(".submitting") for path in layout.feedback.iterdir())


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["other-site", "null-origin", "other-port", "fetch-cross-site", "fetch-same-site"],
)
@pytest.mark.parametrize("path", ["/api/feedback?label=1", "/api/feedback/submit", "/api/predict"])
def test_a_post_from_another_site_is_refused_and_writes_nothing(
    app: int, champion: str, tmp_path: Path, headers: dict[str, str], path: str
) -> None:
    """A page elsewhere can make the browser POST a form or text/plain body here with no CORS preflight, and its
    Host is 127.0.0.1: only Origin and Sec-Fetch-Site tell it apart."""
    for seed in range(10):
        assert post(app, f"/api/feedback?label={seed}", distinct_png(seed))[0] == 200
    before = files_under(tmp_path)
    body, multipart_headers = multipart([("digit.png", draw_png(SEVEN))])
    status, answer = post(app, path, body, {**multipart_headers, **headers})
    assert status == 403
    assert "other sites may not change anything" in answer["error"]
    assert files_under(tmp_path) == before


def test_a_post_from_the_app_own_page_is_answered(app: int, champion: str) -> None:
    own = {"Origin": f"http://127.0.0.1:{app}", "Sec-Fetch-Site": "same-origin"}
    assert post(app, "/api/predict", draw_png(SEVEN), own)[0] == 200
    assert post(app, "/api/feedback?label=7", draw_png(SEVEN), own)[0] == 200
