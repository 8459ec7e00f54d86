"""RunConfig parsing: the one place where CLI options and flow parameters are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_pipeline.config import build_config
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.registry import model_names


def test_defaults_select_all_models_and_threads() -> None:
    config = build_config()
    assert config.models == model_names()
    assert (config.profile, config.task_runner, config.seed) == ("default", "threads", 42)


def test_models_and_epochs_accept_cli_and_parameter_forms() -> None:
    from_cli = build_config(models="cnn,ann_no_hidden", epochs=["cnn=3"])
    from_params = build_config(models=["cnn", "ann_no_hidden"], epochs={"cnn": 3})
    assert from_cli.models == from_params.models == ("cnn", "ann_no_hidden")
    assert from_cli.epochs == from_params.epochs == {"cnn": 3}


def test_a_repeated_epochs_flag_adds_to_the_earlier_ones() -> None:
    from cli.main import build_parser, config_from_args

    args = build_parser().parse_args(["run", "--epochs", "cnn=3", "--epochs", "ann_no_hidden=2", "ann_hidden_100=1"])
    assert config_from_args(args).epochs == {"cnn": 3, "ann_no_hidden": 2, "ann_hidden_100": 1}


def test_epochs_for_unselected_models_are_dropped() -> None:
    config = build_config(models=["cnn"], epochs={"cnn": 2, "ann_no_hidden": 1})
    assert config.epochs == {"cnn": 2}


def test_parameters_round_trip() -> None:
    config = build_config(models=["cnn"], train_limit=2000, data_dir="/x/data", task_runner="dask")
    again = build_config(**config.to_parameters())
    assert again == config
    assert again.data_dir == Path("/x/data")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"models": "cnn,resnet"}, "'resnet'"),
        ({"models": "cnn,cnn"}, "models"),
        ({"epochs": ["cnn=0"]}, "epochs[cnn]"),
        ({"epochs": ["cnn"]}, "NAME=N"),
        ({"epochs": {"resnet": 2}}, "'resnet'"),
        ({"profile": "fast"}, "'fast'"),
        ({"task_runner": "ray"}, "'ray'"),
        ({"dask_address": "tcp://h:8786"}, "only used with task_runner=dask"),
        ({"task_runner": "dask", "dask_address": "h:8786"}, "tcp://HOST:PORT"),
        ({"train_limit": -5}, "train_limit"),
        ({"test_limit": True}, "test_limit"),
        ({"seed": "x"}, "seed"),
        ({"source": "ftp"}, "'ftp'"),
    ],
)
def test_bad_values_fail_with_a_message_naming_them(values: dict, named: str) -> None:
    with pytest.raises(PipelineError) as excinfo:
        build_config(**values)
    assert named in str(excinfo.value)
