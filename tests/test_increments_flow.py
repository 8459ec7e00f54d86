"""`mnist-pipeline add-data` through the `increment-gate` flow against a real Prefect server: the printed outcome,
the exit code, the `mnist-increment` artifact and the `mnist.increment.accepted` event read back from the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_manifest
from mnist_pipeline.increments.hashes import list_increments, read_index
from mnist_pipeline.increments.inbox import land_batch, list_pending, read_pending
from mnist_pipeline.increments.sources import read_labelled_batch
from mnist_pipeline.increments.store import read_part
from tests.increment_support import draw_strokes, publish_base, write_image_folder
from tests.markdown_view import RenderedMarkdown

EVENT_WAIT_SECONDS = 60


def read_increment_artifacts(batch_id: str) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mnist-increment"]))
        )
    return [artifact.data for artifact in artifacts if batch_id in (artifact.description or "")]


def wait_for_accepted_events(batch_id: str) -> list[dict]:
    """The accepted events about this batch, polled until one arrives (events are sent and stored asynchronously)."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    event_filter = EventFilter(
        event=EventNameFilter(name=["mnist.increment.accepted"]),
        resource=EventResourceFilter(id=[f"mnist-pipeline.increment.{batch_id}"]),
    )
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=event_filter, limit=10)
        if page.events or time.monotonic() > deadline:
            return [event.payload for event in page.events]
        time.sleep(1)


def test_add_data_accepts_a_folder_posts_the_artifact_and_emits_the_event(
    prefect_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = publish_base(tmp_path / "data")
    images, labels = draw_strokes(40, seed=20)
    folder = write_image_folder(tmp_path / "digits", images, labels)
    assert main(["add-data", str(folder), "--data-dir", str(layout.root), "--note", "scans from office B"]) == 0
    out = capsys.readouterr().out
    batch_id = out.split()[1]
    assert f"accepted: {batch_id} (train " in out
    assert list_increments(read_index(layout)) == [batch_id]
    (markdown,) = read_increment_artifacts(batch_id)
    shown = RenderedMarkdown(markdown).text
    assert f"Batch {batch_id}: accepted" in shown
    assert "test leakage (MNIST test): ok" in shown
    assert "data:image/png;base64," in markdown, "the drift picture is in the artifact"
    (payload,) = wait_for_accepted_events(batch_id)
    rows = payload["rows"]
    assert rows["train"] + rows["test"] == 40 and payload["data_dir"] == str(layout.root)


def test_add_data_refuses_with_one_line_per_check_and_emits_nothing(
    prefect_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = publish_base(tmp_path / "data")
    images, labels = draw_strokes(12, seed=21, side=28)
    path = tmp_path / "bad.npz"
    np.savez(path, x=images, y=np.where(np.arange(12) < 3, 11, labels))
    assert main(["add-data", str(path), "--data-dir", str(layout.root), "--min-images", "20"]) == 2
    out = capsys.readouterr().out
    batch_id = out.split()[1]
    lines = out.splitlines()
    assert lines[1] == f"refused: {batch_id} -> {layout.refused / batch_id}"
    assert [line.strip().split(":")[0] for line in lines[2:]] == ["images", "labels"]
    (markdown,) = read_increment_artifacts(batch_id)
    assert f"Batch {batch_id}: refused" in RenderedMarkdown(markdown).text
    assert not layout.increments.exists()
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(resource=EventResourceFilter(id=[f"mnist-pipeline.increment.{batch_id}"])), limit=10
        )
    assert page.events == []


def test_add_data_pending_gates_every_waiting_batch(
    prefect_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = publish_base(tmp_path / "data")
    ids = []
    for seed in (22, 23):
        images, labels = draw_strokes(15, seed=seed)
        folder = write_image_folder(tmp_path / f"digits-{seed}", images, labels)
        ids.append(land_batch(layout, read_labelled_batch(folder), str(folder), "feedback"))
        time.sleep(1.1)  # ids carry the landing second
    assert main(["add-data", "--pending", "--data-dir", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("accepted:")] == ids
    assert list_pending(layout) == [] and list_increments(read_index(DataLayout(layout.root))) == ids
    assert main(["add-data", "--pending", "--data-dir", str(layout.root)]) == 0
    assert "no pending batches" in capsys.readouterr().out


def test_a_run_gates_pending_batches_and_trains_on_the_grown_version(
    prefect_server: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    from flows.pipeline import mnist_pipeline

    data_dir = tmp_path / "data"
    layout = DataLayout(data_dir)
    images, labels = draw_strokes(40, seed=24)
    folder = write_image_folder(tmp_path / "digits", images, labels)
    batch_id = land_batch(layout, read_labelled_batch(folder), str(folder), None)
    parameters = {
        "source": f"npz:{synthetic_npz}",
        "data_dir": str(data_dir),
        "reports_dir": str(tmp_path / "reports"),
        "models": ["ann_no_hidden"],
        "epochs": {"ann_no_hidden": 1},
    }
    outputs = mnist_pipeline(**parameters)
    assert list_pending(layout) == [] and list_increments(read_index(layout)) == [batch_id]
    manifest = read_manifest(layout)
    assert manifest["increments"] == [batch_id] and "new" in manifest["splits"]
    metrics = json.loads(Path(outputs["metrics"]).read_text())
    assert metrics["data"]["fingerprint"] == manifest["fingerprint"]
    assert metrics["data"]["train_rows"] == 1200 + read_part(layout, batch_id, "train").rows
    model = metrics["models"]["ann_no_hidden"]
    assert model["increment_rows"] == read_part(layout, batch_id, "train").rows > 0
    assert model["train_config"]["increment_share"] == 0.1


def test_a_batch_accepted_by_a_killed_gate_is_finished_not_refused(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after the index update: the batch is still pending but its images are accepted. The next gate
    finishes it (no re-check against its own images) and sends the event it never got."""
    from mnist_pipeline.increments import store

    layout, _ = publish_base(tmp_path / "data")
    images, labels = draw_strokes(20, seed=24)
    batch_id = land_batch(layout, read_labelled_batch(write_image_folder(tmp_path / "d", images, labels)), "d", None)
    with monkeypatch.context() as patch:
        patch.setattr(store, "remove_pending", lambda *_: None)  # the kill: the inbox is never cleaned
        store.accept_batch(layout, read_pending(layout, batch_id), [], None)
    assert list_pending(layout) == [batch_id] and list_increments(read_index(layout)) == [batch_id]
    assert main(["add-data", "--pending", "--data-dir", str(layout.root)]) == 0
    assert f"accepted: {batch_id} " in capsys.readouterr().out
    assert list_pending(layout) == [] and not (layout.refused / batch_id).exists()
    assert list_increments(read_index(layout)) == [batch_id]
    (payload,) = wait_for_accepted_events(batch_id)
    assert payload["rows"]["train"] + payload["rows"]["test"] == 20


def test_a_batch_left_half_accepted_before_the_index_update_is_judged_again(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between writing the increment folder and updating the index: the batch is judged again; refused,
    its folder (which no version holds) goes too."""
    from mnist_pipeline.increments import store

    layout, _ = publish_base(tmp_path / "data")
    images, labels = draw_strokes(20, seed=25)
    batch_id = land_batch(layout, read_labelled_batch(write_image_folder(tmp_path / "d", images, labels)), "d", None)
    with monkeypatch.context() as patch:
        patch.setattr(store, "append_to_index", lambda *_: None)
        patch.setattr(store, "remove_pending", lambda *_: None)
        store.accept_batch(layout, read_pending(layout, batch_id), [], None)
    assert (layout.increments / batch_id).is_dir() and list_increments(read_index(layout)) == []
    assert main(["add-data", "--pending", "--data-dir", str(layout.root), "--min-images", "100"]) == 2
    assert (layout.refused / batch_id).is_dir() and not (layout.increments / batch_id).exists()


def test_explicit_batches_judged_meanwhile_are_reported_not_judged_again(prefect_server: str, tmp_path: Path) -> None:
    from flows.increments import increment_gate

    layout, _ = publish_base(tmp_path / "data")
    ids = []
    for seed, rows in ((26, 20), (27, 5)):  # the second is too small: refused
        images, labels = draw_strokes(rows, seed=seed)
        folder = write_image_folder(tmp_path / f"d{seed}", images, labels)
        ids.append(land_batch(layout, read_labelled_batch(folder), str(folder), None))
        time.sleep(1.1)  # ids carry the landing second
    first = increment_gate(data_dir=str(layout.root), min_images=10)  # e.g. a retrain's gate, before ours
    assert [outcome.accepted for outcome in first] == [True, False]
    again = increment_gate(data_dir=str(layout.root), batch_ids=ids, min_images=10)
    assert [(o.id, o.accepted, o.rows, o.reasons) for o in again] == [
        (o.id, o.accepted, o.rows, o.reasons) for o in first
    ]
    assert all(outcome.note == "judged earlier by another gate" for outcome in again)
