"""Each default is defined once (mnist_pipeline.defaults); the CLI, the flow and RunConfig all show that value."""

from __future__ import annotations

import inspect
from pathlib import Path

from cli.main import build_parser
from mnist_pipeline import defaults
from mnist_pipeline.config import RunConfig, build_config
from mnist_pipeline.data.image_shape import format_image_shape
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL, model_names

EXPECTED = {
    "source": defaults.SOURCE,
    "profile": defaults.PROFILE,
    "seed": defaults.SEED,
    "promotion_margin": defaults.PROMOTION_MARGIN,
    "max_recall_drop": defaults.MAX_RECALL_DROP,
    "max_test_drop": defaults.MAX_TEST_DROP,
    "task_runner": defaults.TASK_RUNNER,
}


def test_cli_defaults_come_from_the_defaults_module() -> None:
    args = build_parser().parse_args(["run"])
    assert {name: getattr(args, name) for name in EXPECTED} == EXPECTED
    assert args.models == ",".join(model_names())
    assert args.image_shape == format_image_shape(defaults.IMAGE_SHAPE)
    assert (args.data_dir, args.reports_dir) == (defaults.DATA_DIR, defaults.REPORTS_DIR)
    assert build_parser().parse_args(["predict", "x.png"]).model == DEFAULT_PREDICT_MODEL


def test_flow_signatures_and_run_config_agree_with_it() -> None:
    from flows.batch_predict import batch_predict
    from flows.pipeline import mnist_pipeline

    shown = mnist_pipeline.parameters.properties  # Prefect's parameter schema: the UI's form and its defaults
    assert {name: shown[name]["default"] for name in EXPECTED} == EXPECTED
    assert Path(shown["data_dir"]["default"]) == defaults.DATA_DIR
    assert shown["image_shape"]["default"] == format_image_shape(defaults.IMAGE_SHAPE)
    assert shown["models"]["default"] == list(model_names())
    assert inspect.signature(batch_predict.fn).parameters["model"].default == DEFAULT_PREDICT_MODEL
    config = RunConfig()
    assert {name: getattr(config, name) for name in EXPECTED} == EXPECTED
    assert build_config() == config
