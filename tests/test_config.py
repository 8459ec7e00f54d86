"""RunConfig parsing: the one place where CLI options and flow parameters are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_pipeline.config import RunConfig, build_config
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


def test_run_and_serve_options_are_the_fields_with_their_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import build_parser, config_from_args

    monkeypatch.setenv("COLUMNS", "1000")  # no help text wrapped
    for command in ("run", "serve"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        for name, field in RunConfig.model_fields.items():
            entry = shown[shown.index(f" --{name.replace('_', '-')} ") :].split(" --", 2)[1]
            assert field.description in entry
    args = build_parser().parse_args(["serve", "--models", "cnn", "--image-shape", "32x32", "--promote-limited"])
    config = config_from_args(args)
    assert (config.models, config.image_shape, config.promote_limited) == (("cnn",), (32, 32), True)
    assert config.data_dir.is_absolute() and config.reports_dir.is_absolute()


def test_flow_parameters_are_the_fields_flat_with_their_types_defaults_and_help() -> None:
    """Prefect's own schema of the flow (the UI's form, the server's check of `--param`) comes from RunConfig."""
    from prefect.utilities.schema_tools import validate

    from flows.pipeline import mnist_pipeline

    schema = mnist_pipeline.parameters.model_dump()
    assert list(schema["properties"]) == list(RunConfig.model_fields)
    assert not schema.get("required")
    defaults = RunConfig().to_parameters()
    for name, shown in schema["properties"].items():
        assert (shown["default"], shown["description"]) == (defaults[name], RunConfig.model_fields[name].description)
    good = {"seed": 1, "train_limit": 600, "image_shape": "32x32", "models": ["cnn"], "epochs": {"cnn": 2}}
    assert validate(good, schema) == []
    for bad in ({"seed": 1.5}, {"train_limit": "many"}, {"models": 7}, {"profile": "fast"}, {"image_shape": [28, 28]}):
        assert validate(bad, schema), bad


@pytest.fixture
def stop_after_config(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """Stop the flow right after it built its RunConfig, keeping what it built."""
    import flows.pipeline

    built: list[RunConfig] = []

    def build_and_stop(**values: object) -> RunConfig:
        built.append(build_config(**values))
        raise PipelineError("stopped after the config")

    monkeypatch.setattr(flows.pipeline, "build_config", build_and_stop)
    return built


def test_a_real_flow_call_hands_its_parameters_to_the_config(
    prefect_server: str, stop_after_config: list[RunConfig]
) -> None:
    from flows.pipeline import mnist_pipeline

    with pytest.raises(PipelineError, match="stopped after the config"):
        mnist_pipeline(seed=7, models=["cnn"], epochs={"cnn": 2, "ann_no_hidden": 1}, image_shape="32x32")
    (config,) = stop_after_config
    assert (config.seed, config.models, config.epochs, config.image_shape) == (7, ("cnn",), {"cnn": 2}, (32, 32))
    assert config.profile == "default" and config.data_dir == Path("data")


def test_a_bad_flow_parameter_is_one_line_naming_it(prefect_server: str) -> None:
    from flows.pipeline import mnist_pipeline

    with pytest.raises(PipelineError) as excinfo:
        mnist_pipeline(models=["resnet"])
    assert str(excinfo.value).startswith("models (--models): expected one or more distinct of")
    assert "'resnet'" in str(excinfo.value) and "\n" not in str(excinfo.value)
