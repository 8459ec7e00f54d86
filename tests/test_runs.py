"""Run naming, tagging, runner choice, planning and the metrics document, called without Prefect."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mnist_pipeline import defaults
from mnist_pipeline.config import RunConfig, build_config
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.jobs import ModelScores, SetEvaluation, TrainedModel
from mnist_pipeline.runs.cache_keys import compute_evaluation_key, describe_runtime, hash_training_code
from mnist_pipeline.runs.metrics import ModelOutcome, assemble_metrics
from mnist_pipeline.runs.names import claim_run_dir, compose_run_name, run_tags
from mnist_pipeline.runs.plan import choose_task_runner, plan_training, tf_threads_per_model

AT = datetime(2026, 11, 27, 5, 4, 3, tzinfo=UTC)
MANIFEST = {
    "fingerprint": "ab" * 32,
    "splits": {"train": {"rows": 1200, "sha256": "1" * 64}, "test": {"rows": 300, "sha256": "2" * 64}},
    "source": "npz",
    "origin": "/tmp/digits.npz",
}


def test_run_names_sort_by_time_and_carry_the_run_id() -> None:
    assert compose_run_name("run", "0123456789abcdef", AT, 6) == "run-2026-11-27-050403-012345"
    assert compose_run_name("predict", "0123456789abcdef", AT, 8) == "predict-2026-11-27-050403-01234567"
    with pytest.raises(PipelineError, match="run name"):
        compose_run_name("../up", "0123", AT, 6)


def test_a_run_folder_is_claimed_once(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path, "run-a")
    assert first == tmp_path / "runs" / "run-a" and first.is_dir()
    with pytest.raises(PipelineError, match="expected a new run folder, found one already"):
        claim_run_dir(tmp_path, "run-a")


def test_tags_name_profile_source_kind_and_models() -> None:
    tags = run_tags("best", "idx:/data/fashion", ("cnn",))
    assert tags == {"profile:best", "source:idx", "model:cnn"}


@pytest.mark.parametrize(
    ("runner", "address", "kind", "options"),
    [
        ("threads", None, "threads", {"max_workers": 9}),
        ("processes", None, "processes", {"max_workers": 3}),
        ("dask", "tcp://10.0.0.5:8786", "dask", {"address": "tcp://10.0.0.5:8786"}),
    ],
)
def test_runner_choice(runner: str, address: str | None, kind: str, options: dict) -> None:
    choice = choose_task_runner(build_config(task_runner=runner, dask_address=address), 3)
    assert (choice.kind, choice.options) == (kind, options)


def test_a_local_dask_cluster_gets_one_single_threaded_worker_per_model() -> None:
    choice = choose_task_runner(build_config(task_runner="dask"), 2)
    assert choice.options["cluster_kwargs"]["n_workers"] == 2
    assert choice.options["cluster_kwargs"]["threads_per_worker"] == 1


def test_threads_share_tensorflow_processes_split_the_cores() -> None:
    assert tf_threads_per_model(build_config(task_runner="threads"), 3) is None
    assert tf_threads_per_model(build_config(task_runner="processes"), 3) >= 1


def test_plan_gives_each_model_its_resolved_config_and_distinct_keys() -> None:
    config = build_config(epochs={"cnn": 2}, test_limit=100)
    jobs = plan_training(config, MANIFEST)
    assert [job.model for job in jobs] == list(config.models)
    assert {job.model: job.train_config.epochs for job in jobs}["cnn"] == 2
    assert len({job.key for job in jobs}) == len({job.eval_key for job in jobs}) == len(jobs)
    assert all(job.train_config.precision != "auto" for job in jobs)
    assert all((job.seed, job.test_limit, job.image_shape) == (config.seed, 100, (28, 28)) for job in jobs)
    other_limit = plan_training(build_config(epochs={"cnn": 2}, test_limit=200), MANIFEST)
    assert [job.key for job in other_limit] == [job.key for job in jobs]
    assert all(a.eval_key != b.eval_key for a, b in zip(jobs, other_limit, strict=True))


def test_typed_jobs_keep_the_cache_keys_the_dict_jobs_had() -> None:
    """The keys are computed from the same JSON payload as when jobs travelled as dicts, so no saved model or
    recorded evaluation is orphaned by the typed jobs: each key is rebuilt here from that payload by hand."""
    config = build_config(epochs={"cnn": 2}, test_limit=100, seed=7)
    for job in plan_training(config, MANIFEST):
        payload = {
            "model": job.model,
            "data": MANIFEST["fingerprint"],
            "config": dataclasses.asdict(job.train_config),
            "seed": 7,
            "train_limit": None,
            "code": hash_training_code(job.model),
            "runtime": describe_runtime(tf_threads_per_model(config, len(config.models))),
        }
        assert job.key == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
        assert job.eval_key == compute_evaluation_key(job.key, MANIFEST["splits"]["test"]["sha256"], 100)


def make_trained(**fields: object) -> TrainedModel:
    values: dict = {
        "model": "cnn",
        "key": "k",
        "train_config": {"epochs": 3, "batch_size": 256},
        "seed": 42,
        "train_rows": 1200,
        "epochs_run": 3,
        "best_epoch": 3,
        "history": {"loss": [1.0, 0.5, 0.2]},
        "epoch_seconds": [4.0, 3.0, 2.0],
        "train_seconds": 9.5,
        "started_at": "a",
        "finished_at": "b",
        "params": 542230,
        "model_path": "/data/models/cnn/k.keras",
    }
    return TrainedModel(**(values | fields))


def make_evaluation(accuracy: float, rows: int, reused: bool) -> SetEvaluation:
    """What `run_evaluation_job` returns for one set."""
    calibration = {"temperature": 1.2, "ece_before": 0.02, "ece_after": 0.01}
    selective = {"threshold": 0.8, "target_error": 0.005, "coverage": 0.97, "error": 0.004}
    return SetEvaluation(
        accuracy, 0.1, rows, [[rows]], {"recall": [accuracy] * 10}, calibration, selective, f"/e/{rows}.parquet", reused
    )


def test_metrics_document_has_the_contract_sections() -> None:
    config = RunConfig(models=("cnn",))
    outcome = ModelOutcome(make_trained(), ModelScores(make_evaluation(0.99, 300, False)), "/r/p.parquet")
    run = {"name": "run-x", "flow_run_id": "id", "flow_run_url": None, "started_at": "s"}
    metrics = assemble_metrics(
        config, run, MANIFEST, {"success": True}, {"cnn": outcome}, {"train": 9.81234}, {"git": None}
    )
    assert set(metrics) == {"run", "data", "validation", "stages", "models"}
    assert metrics["run"]["name"] == "run-x" and metrics["run"]["seed"] == defaults.SEED
    assert metrics["data"]["test_rows"] == 300 and metrics["stages"]["train"] == {"seconds": 9.812}
    model = metrics["models"]["cnn"]
    assert (model["test_accuracy"], model["epochs"], model["batch_size"], model["key"]) == (0.99, 3, 256, "k")
    assert model["resumed_from_epoch"] == 0 and model["epoch_seconds"] == [4.0, 3.0, 2.0]
    assert (model["predictions_path"], model["cached"]) == ("/r/p.parquet", False)
    assert model["calibration"] == model["eval"]["test"]["calibration"] and model["calibration"]["ece_after"] == 0.01
    assert model["selective"]["coverage"] == model["eval"]["test"]["selective"]["coverage"] == 0.97


def test_a_training_summary_round_trips_without_its_path_and_reuse_flag() -> None:
    trained = make_trained(warm_start="w", resumed_from_epoch=2, reused=True)
    recorded = json.loads(json.dumps(trained.summary()))
    assert "model_path" not in recorded and "reused" not in recorded
    assert TrainedModel(**recorded, model_path=trained.model_path, reused=True) == trained


GROWN = {
    **MANIFEST,
    "splits": {**MANIFEST["splits"], "new": {"rows": 40, "sha256": "3" * 64}},
    "increments": ["b-20261201T000000-0a1b2c3d", "b-20261202T000000-4e5f6a7b"],
}


def test_a_grown_version_plans_an_unlimited_evaluation_on_new() -> None:
    limited, other = plan_training(build_config(test_limit=100), GROWN), plan_training(build_config(), GROWN)
    assert all(job.new_eval_key not in (None, job.eval_key) for job in limited)
    # `new` is never limited: the --test-limit changes the test key only.
    assert [job.new_eval_key for job in limited] == [job.new_eval_key for job in other]
    assert all(job.new_eval_key is None for job in plan_training(build_config(), MANIFEST))
    empty = {**GROWN, "splits": {**GROWN["splits"], "new": {"rows": 0, "sha256": "4" * 64}}}
    assert all(job.new_eval_key is None for job in plan_training(build_config(), empty))


def test_metrics_record_each_evaluation_set_and_the_data_it_came_from() -> None:
    scores = ModelScores(make_evaluation(0.99, 300, True), make_evaluation(0.75, 40, False))
    outcomes = {"cnn": ModelOutcome(make_trained(reused=True), scores, "/r/p.parquet")}
    run = {"name": "run-x", "flow_run_id": "id", "flow_run_url": None, "started_at": "s"}
    metrics = assemble_metrics(RunConfig(models=("cnn",)), run, GROWN, {}, outcomes, {}, {})
    model = metrics["models"]["cnn"]
    assert set(model["eval"]) == {"test", "new"}
    assert (model["eval"]["new"]["accuracy"], model["eval"]["new"]["rows"]) == (0.75, 40)
    assert model["eval"]["new"]["confusion_matrix"] == [[40]]
    assert model["test_accuracy"] == model["eval"]["test"]["accuracy"] == 0.99 and model["test_rows"] == 300
    assert model["evaluation_reused"] is False  # the new set was scored anew
    assert metrics["data"]["increments"] == GROWN["increments"]
    assert (metrics["data"]["new_rows"], metrics["data"]["new_sha256"]) == (40, "3" * 64)
    base = assemble_metrics(RunConfig(models=("cnn",)), run, MANIFEST, {}, outcomes, {}, {})
    assert (base["data"]["increments"], base["data"]["new_rows"], base["data"]["new_sha256"]) == ([], 0, None)
