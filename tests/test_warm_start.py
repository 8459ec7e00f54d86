"""Warm start (fine-tune the champion) and `require_new_data` (nothing new, nothing trained): the rules, seeded
fine-tuning with real TensorFlow, and both through the real flow."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_pipeline.champion.decide import describe_no_new_data, find_warm_starts
from mnist_pipeline.champion.registry import ChampionEntry, Registry, load_registry
from mnist_pipeline.champion.rule import Candidate
from mnist_pipeline.config import build_config
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling.profiles import WARM_START_EPOCHS, TrainConfig, fine_tuning_config, resolve_config
from mnist_pipeline.runs.cache_keys import compute_training_key
from mnist_pipeline.runs.plan import plan_training
from tests.synthetic_digits import make_split

FINGERPRINT = "a" * 64
MANIFEST = {"fingerprint": FINGERPRINT, "splits": {"test": {"sha256": "b" * 64, "rows": 300}}}


def champion(key: str, fingerprint: str = FINGERPRINT) -> Candidate:
    return Candidate(
        key=key,
        model_path=f"/models/{key}.keras",
        run_name=f"run-{key}",
        data_fingerprint=fingerprint,
        test_rows=300,
        test_accuracy=0.9,
        per_class_recall=(0.9,) * 10,
    )


def registry_of(**champions: Candidate) -> Registry:
    at = "2026-12-02T00:00:00+00:00"
    entries = {name: ChampionEntry(name, found, at, False, "r") for name, found in champions.items()}
    return Registry(champions=entries, history=[])


def test_nothing_new_only_when_every_selected_champion_saw_this_very_dataset() -> None:
    both = registry_of(cnn=champion("k1"), ann_no_hidden=champion("k2"))
    line = describe_no_new_data(both, ("cnn", "ann_no_hidden"), FINGERPRINT)
    assert line is not None and FINGERPRINT[:12] in line and "\n" not in line
    assert describe_no_new_data(both, ("cnn", "ann_no_hidden"), "c" * 64) is None  # the data grew
    one_older = registry_of(cnn=champion("k1"), ann_no_hidden=champion("k2", fingerprint="d" * 64))
    assert describe_no_new_data(one_older, ("cnn", "ann_no_hidden"), FINGERPRINT) is None
    assert describe_no_new_data(one_older, ("cnn",), FINGERPRINT) is not None  # only the selected models count
    assert describe_no_new_data(registry_of(cnn=champion("k1")), ("cnn", "ann_hidden_100"), FINGERPRINT) is None
    assert describe_no_new_data(registry_of(), ("cnn",), FINGERPRINT) is None  # no champion yet


def test_warm_starts_are_the_champions_whose_model_file_opens(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    registry = registry_of(cnn=champion("k1"), ann_no_hidden=champion("k2"), ann_hidden_100=champion("k3"))
    for name, key in (("cnn", "k1"), ("ann_hidden_100", "k3")):
        layout.model_file(name, key).parent.mkdir(parents=True)
    with zipfile.ZipFile(layout.model_file("cnn", "k1"), "w") as archive:  # a .keras file is a zip
        archive.writestr("config.json", "{}")
    layout.model_file("ann_hidden_100", "k3").write_bytes(b"truncated")
    # ann_no_hidden's file is gone (collected), ann_hidden_100's damaged: both train from scratch.
    assert find_warm_starts(layout, registry, ("cnn", "ann_no_hidden", "ann_hidden_100")) == {"cnn": "k1"}


def test_fine_tuning_keeps_the_optimizer_settings_over_fewer_epochs() -> None:
    config = resolve_config("best", "cnn")
    tuned = fine_tuning_config(config)
    assert tuned.epochs == WARM_START_EPOCHS < config.epochs and tuned.warmup_epochs == 0.0
    assert replace(tuned, epochs=config.epochs, warmup_epochs=config.warmup_epochs) == config
    assert fine_tuning_config(replace(config, epochs=1, warmup_epochs=0.0)).epochs == 1


def test_a_warm_start_has_its_own_key_per_source_and_scratch_keys_are_unchanged() -> None:
    base = ("cnn", FINGERPRINT, resolve_config("default", "cnn").to_dict(), 42, None, None)
    scratch = compute_training_key(*base)
    assert compute_training_key(*base, None) == scratch
    assert len({scratch, compute_training_key(*base, "k1"), compute_training_key(*base, "k2")}) == 3


def test_the_plan_fine_tunes_the_models_with_a_champion() -> None:
    config = build_config(models="cnn,ann_no_hidden", warm_start=True)
    scratch = {job.model: job for job in plan_training(config, MANIFEST)}
    warm = {job.model: job for job in plan_training(config, MANIFEST, {"cnn": "k1"})}
    assert warm["ann_no_hidden"] == scratch["ann_no_hidden"] and scratch["cnn"].warm_start is None
    assert warm["cnn"].warm_start == "k1" and warm["cnn"].key != scratch["cnn"].key
    assert warm["cnn"].eval_key != scratch["cnn"].eval_key
    assert warm["cnn"].train_config.epochs == WARM_START_EPOCHS
    explicit = build_config(models="cnn", warm_start=True, epochs=["cnn=5"])
    assert plan_training(explicit, MANIFEST, {"cnn": "k1"})[0].train_config.epochs == 5


def weights_digest(model: Any) -> str:
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN trained for one epoch on 300 synthetic digits, saved as training saves it (without its ONNX file)."""
    import keras

    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(threads=None, deterministic=True)
    path = tmp_path_factory.mktemp("warm") / "start.keras"
    result = train_model("cnn", TrainConfig(profile="test", epochs=1, batch_size=64), make_split(300, seed=1), seed=1)
    keras.saving.save_model(result.model, path)
    return path


@pytest.mark.e2e
def test_fine_tuning_is_seeded_and_starts_from_the_saved_weights(trained_cnn: Path) -> None:
    from mnist_pipeline.modeling.model_files import load_model
    from mnist_pipeline.modeling.training import train_model

    config = TrainConfig(profile="test", epochs=1, batch_size=64)
    data = make_split(300, seed=2)
    first = train_model("cnn", config, data, seed=7, warm_start=trained_cnn).model
    again = train_model("cnn", config, data, seed=7, warm_start=trained_cnn).model
    other_seed = train_model("cnn", config, data, seed=8, warm_start=trained_cnn).model
    start = load_model(trained_cnn)
    assert weights_digest(first) == weights_digest(again)
    assert len({weights_digest(first), weights_digest(other_seed), weights_digest(start)}) == 3
    # With a vanishing learning rate the fine-tuned weights stay the saved ones; a model trained anew does not.
    still = train_model("cnn", replace(config, learning_rate=1e-12), data, seed=7, warm_start=trained_cnn).model
    scratch = train_model("cnn", replace(config, learning_rate=1e-12), data, seed=7).model
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(still.get_weights(), start.get_weights(), strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(scratch.get_weights(), start.get_weights(), strict=True))


@pytest.mark.e2e
def test_a_warm_start_from_a_file_that_is_not_a_model_is_one_error_naming_it(tmp_path: Path) -> None:
    from mnist_pipeline.modeling.training import train_model

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match=r"broken\.keras"):
        train_model("cnn", TrainConfig(profile="test", epochs=1), make_split(64), seed=1, warm_start=broken)


@pytest.mark.e2e
def test_a_warm_start_checks_the_archive_members_before_keras_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_pipeline.modeling import serving
    from mnist_pipeline.modeling.training import train_model

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(8 * 2**20))  # 8 MB of zeros in a few KB
    monkeypatch.setattr(serving, "MAX_MODEL_MEMBER_BYTES", 2**20)
    with pytest.raises(DataFormatError, match=r"bomb\.keras.*member model\.weights\.h5: expected a member of at most"):
        train_model("cnn", TrainConfig(profile="test", epochs=1), make_split(64), seed=1, warm_start=bomb)


def run_flow(tmp: Path, npz: Path, **overrides: Any) -> Any:
    from flows.pipeline import mnist_pipeline

    params = {
        "source": f"npz:{npz}",
        "data_dir": str(tmp / "data"),
        "reports_dir": str(tmp / "reports"),
        "models": ["ann_no_hidden"],
        "epochs": {"ann_no_hidden": 1},
        **overrides,
    }
    state = mnist_pipeline(**params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def test_the_flow_trains_nothing_without_new_data_and_warm_starts_from_the_champion(
    prefect_server: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    first = json.loads(Path(run_flow(tmp_path, synthetic_npz)["metrics"]).read_text())
    layout = DataLayout(tmp_path / "data")
    champion_key = load_registry(layout.registry).champions["ann_no_hidden"].candidate.key
    assert champion_key == first["models"]["ann_no_hidden"]["key"]
    registry_bytes, runs = layout.registry.read_bytes(), sorted((tmp_path / "reports" / "runs").iterdir())
    models = sorted(layout.model_file("ann_no_hidden", "x").parent.iterdir())

    skipped = run_flow(tmp_path, synthetic_npz, require_new_data=True)
    assert set(skipped) == {"skipped"} and first["data"]["fingerprint"][:12] in skipped["skipped"]
    assert layout.registry.read_bytes() == registry_bytes
    assert sorted((tmp_path / "reports" / "runs").iterdir()) == runs
    assert sorted(layout.model_file("ann_no_hidden", "x").parent.iterdir()) == models

    warm = json.loads(Path(run_flow(tmp_path, synthetic_npz, warm_start=True)["metrics"]).read_text())
    warm_key = warm["models"]["ann_no_hidden"]["key"]
    assert warm_key != champion_key
    summary = json.loads(layout.model_file("ann_no_hidden", warm_key).with_suffix(".json").read_text())
    assert summary["warm_start"] == champion_key == warm["models"]["ann_no_hidden"]["warm_start"]
    assert first["models"]["ann_no_hidden"]["warm_start"] is None
