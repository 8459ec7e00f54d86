"""Adding a model is one registry entry plus one builder: a toy model added that way runs through the whole flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_pipeline.modeling import registry
from mnist_pipeline.modeling.registry import ModelEntry
from tests.toy_model import TOY_HIDDEN_UNITS

pytestmark = pytest.mark.usefixtures("prefect_server")

TOY = ModelEntry(name="toy", builder="tests.toy_model:build_toy", profiles={"default": {"epochs": 2, "batch_size": 64}})


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, TOY.name, TOY)


@pytest.mark.usefixtures("toy_registered")
def test_a_registered_toy_model_trains_evaluates_reports_and_competes(tmp_path: Path, synthetic_npz: Path) -> None:
    from flows.pipeline import mnist_pipeline
    from mnist_pipeline.champion.registry import find_champion, load_registry
    from mnist_pipeline.data.layout import DataLayout

    outputs = mnist_pipeline(
        source=f"npz:{synthetic_npz}",
        models=["ann_no_hidden", "toy"],
        epochs={"ann_no_hidden": 1},
        data_dir=str(tmp_path / "data"),
        reports_dir=str(tmp_path / "reports"),
    )
    metrics = json.loads(Path(outputs["metrics"]).read_text())
    toy = metrics["models"]["toy"]
    # The toy's own builder and its registry settings were used, not a fallback.
    assert toy["params"] == 28 * 28 * TOY_HIDDEN_UNITS + TOY_HIDDEN_UNITS + TOY_HIDDEN_UNITS * 10 + 10
    assert (toy["epochs"], toy["batch_size"]) == (2, 64)
    assert toy["test_accuracy"] > 0.3  # ten synthetic classes: chance is 0.1
    assert toy["test_rows"] == metrics["data"]["test_rows"]
    assert Path(toy["model_path"]) == DataLayout(tmp_path / "data").model_file("toy", toy["key"])
    assert Path(toy["model_path"]).is_file()
    assert (Path(outputs["report"]).parent / "predictions" / "toy.parquet").is_file()
    report = Path(outputs["report"]).read_text()
    assert 'id="confusion-toy"' in report
    # It competes for champion like the seed's models (no seed-study accuracy: nothing to compare with there).
    champion = find_champion(load_registry(DataLayout(tmp_path / "data").registry), "toy")
    assert champion is not None and champion.key == toy["key"]
    assert metrics["champion"]["toy"]["promoted"] is True


def test_unregistered_names_are_refused_before_any_work(tmp_path: Path, synthetic_npz: Path) -> None:
    from flows.pipeline import mnist_pipeline

    state = mnist_pipeline(
        source=f"npz:{synthetic_npz}",
        models=["toy"],
        data_dir=str(tmp_path / "data"),
        reports_dir=str(tmp_path / "reports"),
        return_state=True,
    )
    assert state.is_failed()
    assert "toy" in str(state.message) and "ann_no_hidden" in str(state.message)
    assert not (tmp_path / "data").exists()
