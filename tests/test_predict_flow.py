"""The `batch-predict` flow end to end against the real Prefect server, with a real trained champion."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.predict_support import draw_digits, train_champion, write_styled

pytestmark = pytest.mark.usefixtures("prefect_server")


def read_markdown_artifact(flow_run_id: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (artifact,) = [artifact for artifact in artifacts if artifact.key == "batch-predictions"]
    return str(artifact.data)


def test_batch_predict_writes_parquet_and_a_markdown_summary(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from flows.batch_predict import batch_predict

    data_dir = train_champion(tmp_path_factory.getbasetemp())
    images, labels = draw_digits(12, seed=21)
    folder = tmp_path / "incoming"
    folder.mkdir()
    for index, (digit, label) in enumerate(zip(images, labels, strict=True)):
        write_styled(digit, "tinted" if index % 2 else "upscaled", folder / f"{index:02d}-label{label}.png")
    (folder / "zz-corrupt.png").write_bytes(b"garbage")

    state = batch_predict(
        input=str(folder),
        data_dir=str(data_dir),
        output_dir=str(tmp_path / "out"),
        target_error=1e-6,
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.scored == 12 and summary.failed == [str(folder / "zz-corrupt.png")]
    output = Path(summary.predictions)
    assert output.name == "predictions.parquet" and output.parent.parent == tmp_path / "out"
    table = pq.read_table(output).to_pylist()
    assert [row["input"] for row in table] == [str(path) for path in sorted(folder.glob("*-label*.png"))]
    assert {row["model_key"] for row in table} == {"drawn-digits"}
    assert np.mean([row["top3"][0]["label"] == label for row, label in zip(table, labels, strict=True)]) >= 0.9
    assert all(row["label"] == (None if row["unsure"] else row["top3"][0]["label"]) for row in table)
    # A 0.0001 % target leaves the drawn-digit champion sure of almost nothing.
    assert summary.unsure == sum(row["unsure"] for row in table) >= 6

    markdown = read_markdown_artifact(str(state.state_details.flow_run_id))
    counts_row = next(line for line in markdown.splitlines() if line.startswith("| inputs |"))
    predicted = np.bincount([row["label"] for row in table if row["label"] is not None], minlength=10)
    assert counts_row == "| inputs | " + " | ".join(map(str, predicted)) + " |"
    assert f"## Not sure: {summary.unsure}\n" in markdown
    thumbnails = markdown.split("data:image/png;base64,")[1:]
    assert len(thumbnails) == 12
    first = Image.open(io.BytesIO(base64.b64decode(thumbnails[0].split(")")[0])))
    assert first.size == (56, 56)
    assert "zz-corrupt.png: expected an image Pillow can read" in markdown.replace("\\", "")


def test_bad_parameters_fail_the_run_with_one_line_naming_them(tmp_path: Path) -> None:
    from flows.batch_predict import batch_predict

    state = batch_predict(input=str(tmp_path / "nowhere"), return_state=True)
    assert state.is_failed()
    assert "input: expected an existing folder or Parquet file" in (state.message or "")
    state = batch_predict(input=str(tmp_path), target_error=1.5, return_state=True)
    assert state.is_failed()
    assert "target_error: expected an error rate in (0, 1), found 1.5" in (state.message or "")
