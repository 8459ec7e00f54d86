"""The `mnist-pipeline` flow: ingest -> validate (gate) -> train models in parallel -> evaluate -> report.

Flows only wire: every step is a task in `tasks/`, every rule lives in the Prefect-free `mnist_pipeline`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from mnist_pipeline.champion.decide import candidate_from_outcome, describe_no_new_data, find_warm_starts
from mnist_pipeline.champion.registry import load_registry, registry_lock
from mnist_pipeline.champion.rule import PromotionPolicy
from mnist_pipeline.config import RunConfig, build_config, takes_run_parameters
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.files.atomic import write_json_atomic
from mnist_pipeline.increments.inbox import list_pending
from mnist_pipeline.modeling.jobs import TrainingJob
from mnist_pipeline.report.publish import to_json
from mnist_pipeline.report.view import assign_colors
from mnist_pipeline.runs.metrics import ModelOutcome, StageClock, assemble_metrics, collect_versions, find_git_commit
from mnist_pipeline.runs.names import claim_run_dir, compose_run_name, run_tags
from mnist_pipeline.runs.plan import RunnerChoice, choose_task_runner, plan_training
from tasks.champion import decide_task, record_task
from tasks.guard import guarded
from tasks.ingest import grow_task, ingest_task, publish_task, validate_task
from tasks.report import charts_task, report_task
from tasks.train import evaluate_task, train_task


def generate_run_name() -> str:
    """`retrain-...` for deployment runs, `run-...` for local ones (see `compose_run_name`)."""
    return compose_run_name("retrain" if deployment.id else "run", str(flow_run.id), datetime.now(UTC), 6)


def tag_flow_run(config: RunConfig) -> None:
    """Add profile, source and model tags so runs can be filtered in the UI's run history."""
    from prefect import get_client

    tags = run_tags(config.profile, config.source, config.models)
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted(set(current.tags) | tags))


def make_task_runner(choice: RunnerChoice) -> TaskRunner:
    """The Prefect task runner `choose_task_runner` picked."""
    if choice.kind == "processes":
        return ProcessPoolTaskRunner(**choice.options)
    if choice.kind == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(**choice.options)
    return ThreadPoolTaskRunner(**choice.options)


def name_training_run() -> str:
    return f"{Path(flow_run.parameters['run_dir']).name}-training"


@flow(name="train-and-evaluate", flow_run_name=name_training_run, validate_parameters=False)
@guarded
def train_and_evaluate(
    jobs: tuple[TrainingJob, ...], layout: DataLayout, reports_dir: Path, run_dir: Path
) -> tuple[dict[str, ModelOutcome], dict[str, float]]:
    """Train every model concurrently, evaluating each once it is trained; returns the outcomes and stage times."""
    logger = get_run_logger()
    clock = StageClock()
    trainings = {job.model: train_task.submit(job, layout) for job in jobs}
    # Each evaluation waits only for its own model's training, so the ANNs are scored while the CNN trains.
    # Submitted after every training, so no evaluation holds a worker that a training is queued for.
    evaluations = {job.model: evaluate_task.submit(trainings[job.model], job, layout, run_dir) for job in jobs}
    # Each model's charts are drawn as soon as it is evaluated (the ANNs' while the CNN trains) for the report.
    colors = assign_colors([job.model for job in jobs])
    drawings = {
        name: charts_task.submit(evaluation, colors[name], layout, reports_dir)
        for name, evaluation in evaluations.items()
    }
    for future in trainings.values():
        future.wait()
    clock.lap("train")
    outcomes = {name: future.result() for name, future in evaluations.items()}
    # "evaluate" is what evaluation adds after the last training ended (the rest overlapped with training);
    # "charts" likewise: the per-model charts still being drawn once every evaluation was done.
    clock.lap("evaluate")
    for name, outcome in outcomes.items():
        if outcome.trained.reused:
            logger.info("%s: reused cached model %s (nothing changed)", name, outcome.trained.model_path)
        if outcome.scores.reused:
            logger.info("%s: reused recorded evaluations (same model, evaluation sets and limit)", name)
    for name, drawing in drawings.items():
        drawing.wait()
        if not drawing.state.is_completed():  # only a head start: the report draws whatever is missing
            logger.warning("%s: charts not drawn ahead (%s); the report draws them", name, drawing.state.message)
    clock.lap("charts")
    return outcomes, clock.seconds


@flow(name="mnist-pipeline", flow_run_name=generate_run_name, validate_parameters=False)
@guarded
@takes_run_parameters
def mnist_pipeline(**parameters: Any) -> dict[str, str]:
    """Run the whole study on RunConfig's fields (flat: `takes_run_parameters`); returns where the report and
    metrics.json went, or, with `require_new_data` and nothing new for the champions, `skipped`: the line why."""
    config = build_config(**parameters).resolve_dirs()
    tag_flow_run(config)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    layout = DataLayout(config.data_dir)
    clock = StageClock()

    manifest = ingest_task(config.source, layout, config.image_shape)
    clock.lap("ingest")
    validation = validate_task(layout, manifest["fingerprint"], config.image_shape)
    # Pending batches are judged against the base just checked; the grown version goes through the same gate.
    if list_pending(layout):
        from flows.increments import increment_gate  # scipy and the drift picture: imported only when needed

        gate = increment_gate(data_dir=str(config.data_dir), fingerprint=manifest["fingerprint"], return_state=True)
        if not gate.is_completed():  # a broken batch must not stop retraining on what was accepted before
            get_run_logger().warning("increment gate failed (%s); its batches stay pending", gate.message)
    grown = grow_task(layout, manifest["fingerprint"])
    if grown["fingerprint"] != manifest["fingerprint"]:
        manifest = grown
        validation = validate_task(layout, manifest["fingerprint"], config.image_shape)
    publish_task(layout, manifest["fingerprint"])
    clock.lap("validate")
    champions = load_registry(layout.registry)
    nothing_new = describe_no_new_data(champions, config.models, manifest["fingerprint"])
    if config.require_new_data and nothing_new:
        get_run_logger().info(nothing_new)
        return {"skipped": nothing_new}
    run_dir = claim_run_dir(config.reports_dir, str(flow_run.name))

    warm_starts = find_warm_starts(layout, champions, config.models) if config.warm_start else {}
    jobs = plan_training(config, manifest, warm_starts)
    runner = make_task_runner(choose_task_runner(config, len(jobs)))
    provenance = {"versions": collect_versions(), "git_commit": find_git_commit()}
    pinned = layout.pin(manifest["fingerprint"])
    outcomes, seconds = train_and_evaluate.with_options(task_runner=runner)(jobs, pinned, config.reports_dir, run_dir)
    run = {"name": flow_run.name, "flow_run_id": flow_run.id, "flow_run_url": flow_run.ui_url, "started_at": started_at}
    metrics = assemble_metrics(config, run, manifest, validation, outcomes, clock.seconds | seconds, provenance)
    candidates = {
        name: candidate_from_outcome(result, run["name"], metrics["data"]) for name, result in outcomes.items()
    }
    # Promotion is one critical section, committed last: read the champion, decide (re-evaluating it if needed),
    # write this run's report and metrics.json, and only then record the decision, all under the registry lock.
    with registry_lock(layout.registry):
        clock.restart()
        policy = PromotionPolicy(config.promotion_margin, config.max_recall_drop, config.max_test_drop)
        decisions = decide_task(layout, candidates, config.test_limit, policy, config.promotion_limits())
        metrics["champion"] = {name: decision.to_dict() for name, decision in decisions.items()}
        metrics["stages"]["promote"] = {"seconds": clock.lap("promote")}
        report_path = report_task(metrics, layout, config.reports_dir)
        # The report shows the stages that finished before it; metrics.json adds the report's own time.
        metrics["stages"]["report"] = {"seconds": clock.lap("report")}
        metrics_path = run_dir / "metrics.json"
        write_json_atomic(metrics_path, metrics, default=to_json)
        record_task(layout, run["name"], decisions, candidates)
    return {"report": report_path, "metrics": str(metrics_path)}
