"""What a run will do before it does it: how models train side by side, and each model's typed job and keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mnist_pipeline.config import RunConfig
from mnist_pipeline.modeling.hardware import count_usable_cores
from mnist_pipeline.modeling.jobs import TrainingJob
from mnist_pipeline.modeling.profiles import choose_precision, fine_tuning_config, resolve_config
from mnist_pipeline.runs.cache_keys import compute_evaluation_key, compute_training_key
from mnist_pipeline.runs.metrics import find_new_split

log = logging.getLogger(__name__)
TASKS_PER_MODEL = 3  # train, evaluate, charts


@dataclass(frozen=True)
class RunnerChoice:
    """Which task runner trains the models side by side, with its options (Prefect's names for them)."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


def choose_task_runner(config: RunConfig, n_models: int) -> RunnerChoice:
    """Threads share one TF runtime; processes and Dask give each model its own. In threads each of a model's tasks
    gets a thread, since a task waiting for its upstream holds one: else one model's evaluation and charts could
    take every free thread while its training runs, and the other models' trainings would queue behind them."""
    if config.task_runner == "dask":
        if config.dask_address:
            return RunnerChoice("dask", {"address": config.dask_address})
        cluster = {"n_workers": n_models, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        return RunnerChoice("dask", {"cluster_kwargs": cluster})
    if config.task_runner == "threads":
        return RunnerChoice("threads", {"max_workers": TASKS_PER_MODEL * n_models})
    return RunnerChoice(config.task_runner, {"max_workers": n_models})


def tf_threads_per_model(config: RunConfig, n_models: int) -> int | None:
    """Split the cores between model processes; threads share one TF runtime that already sizes itself."""
    if config.task_runner == "threads":
        return None
    return max(1, count_usable_cores() // n_models)


def plan_training(
    config: RunConfig, manifest: dict[str, Any], warm_starts: dict[str, str] | None = None
) -> tuple[TrainingJob, ...]:
    """One job per selected model: its resolved training config, training key and evaluation keys (`test`, and
    `new` when the version has a non-empty `new` split, which is never limited), and `warm_start`: the key of the
    model it fine-tunes (from `warm_starts`, model -> champion key), or None to train from scratch."""
    jobs = []
    new_split = find_new_split(manifest)
    tf_threads = tf_threads_per_model(config, len(config.models))
    for name in config.models:
        resolved = resolve_config(config.profile, name, config.epochs.get(name), config.precision)
        warm_start = (warm_starts or {}).get(name)
        if warm_start is not None and name not in config.epochs:
            resolved = fine_tuning_config(resolved)
        log.info("%s: precision %s", name, choose_precision(config.profile, name, config.precision).reason)
        if warm_start is not None:
            log.info("%s: fine-tuning champion %s for %d epoch(s)", name, warm_start, resolved.epochs)
        key = compute_training_key(
            name, manifest["fingerprint"], resolved.to_dict(), config.seed, config.train_limit, tf_threads, warm_start
        )
        jobs.append(
            TrainingJob(
                model=name,
                key=key,
                eval_key=compute_evaluation_key(key, manifest["splits"]["test"]["sha256"], config.test_limit),
                new_eval_key=compute_evaluation_key(key, new_split["sha256"], None) if new_split else None,
                train_config=resolved,
                warm_start=warm_start,
                seed=config.seed,
                train_limit=config.train_limit,
                test_limit=config.test_limit,
                image_shape=config.image_shape,
                tf_threads=tf_threads,
            )
        )
    return tuple(jobs)
