"""The run options, defined once: RunConfig's fields are the CLI's `run`/`serve` options and the flow's parameters.

`build_config` validates values from either, so a bad value is one PipelineError line before any work starts.
"""

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from mnist_pipeline import defaults
from mnist_pipeline.data.image_shape import format_image_shape, parse_image_shape
from mnist_pipeline.data.sources import SOURCE_HELP, parse_source
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.hardware import PRECISIONS
from mnist_pipeline.modeling.profiles import profile_names
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL, model_names

F = TypeVar("F", bound=Callable[..., Any])
TASK_RUNNERS = ("threads", "processes", "dask")


def parse_models(value: Any) -> Any:
    """Accept 'a,b' (CLI) or a list (flow parameter); refuse unknown or repeated names; None means every model."""
    if value is None:
        return model_names()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        return value  # not a list: the field's type refuses it
    known = model_names()
    unknown = [name for name in value if name not in known]
    if not value or unknown or len(set(value)) != len(value):
        found = ", ".join(map(repr, unknown)) if unknown else repr(value)
        raise ValueError(f"expected one or more distinct of {', '.join(known)}, found {found}")
    return tuple(value)


def parse_epoch_pairs(value: Any) -> Any:
    """Accept ['NAME=N', ...] (CLI) as well as {NAME: N} (flow parameter); None means no override."""
    if value is None:
        return {}
    if not isinstance(value, list | tuple):
        return value
    pairs = {}
    for item in value:
        name, sep, number = str(item).partition("=")
        if not sep or not number.strip().isdigit():
            raise ValueError(f"expected NAME=N (e.g. {DEFAULT_PREDICT_MODEL}=3), found {item!r}")
        pairs[name.strip()] = int(number)
    return pairs


def check_source(value: str) -> str:
    """Refuse a `--source` that `parse_source` would refuse, as a ValueError pydantic reports for the field."""
    try:
        parse_source(value)
    except PipelineError:
        raise ValueError(f"expected one of {SOURCE_HELP}, found {value!r}") from None
    return value


Positive = Annotated[int, Strict(), Field(gt=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, lt=1)]
# Held as (height, width); written and read as 'HxW', so the UI's form and `--param image_shape=32x32` take text.
ImageShape = Annotated[
    tuple[int, int],
    BeforeValidator(parse_image_shape),
    PlainSerializer(format_image_shape, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\d+\s*[xX]\s*\d+\s*$"}),
]


class RunConfig(BaseModel):
    """Everything one pipeline run depends on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Annotated[str, AfterValidator(check_source)] = Field(defaults.SOURCE, description=SOURCE_HELP)
    image_shape: ImageShape = Field(defaults.IMAGE_SHAPE, description="expected image size, e.g. 32x32")
    models: Annotated[tuple[str, ...], BeforeValidator(parse_models)] = Field(
        default_factory=model_names, description="models to train (comma-separated on the command line)"
    )
    profile: Literal[profile_names()] = Field(defaults.PROFILE, description="training settings")
    epochs: Annotated[dict[str, Positive], BeforeValidator(parse_epoch_pairs)] = Field(
        default_factory=dict, description=f"override epochs per model, e.g. {DEFAULT_PREDICT_MODEL}=3"
    )
    precision: Literal[PRECISIONS] | None = Field(
        None,
        description="training precision for every model (default: the profile's; auto = bfloat16 only where native)",
    )
    train_limit: Positive | None = Field(None, description="train on the first N training images")
    test_limit: Positive | None = Field(None, description="evaluate on the first N test images")
    task_runner: Literal[TASK_RUNNERS] = Field(defaults.TASK_RUNNER, description="how models train side by side")
    dask_address: str | None = Field(None, description="existing Dask scheduler (with task_runner dask)")
    data_dir: Path = Field(defaults.DATA_DIR, description="where raw downloads, Parquet and models live")
    reports_dir: Path = Field(defaults.REPORTS_DIR, description="where reports go")
    seed: Annotated[int, Strict(), Field(ge=0)] = Field(
        defaults.SEED, description="seed for Python, numpy and TensorFlow"
    )
    promotion_margin: Fraction = Field(
        defaults.PROMOTION_MARGIN,
        description="accuracy gain (fraction) a challenger needs to become champion: on new data, else on test",
    )
    max_recall_drop: Fraction = Field(
        defaults.MAX_RECALL_DROP, description="largest per-digit recall drop (fraction) a promoted model may have"
    )
    max_test_drop: Fraction = Field(
        defaults.MAX_TEST_DROP,
        description="largest test accuracy drop (fraction, e.g. 0.002 = 0.2 points) a promoted model may have",
    )
    promote_limited: Annotated[bool, Strict()] = Field(
        False,
        description="let a run with a train or test limit compete for champion (by default it leaves champions alone)",
    )
    warm_start: Annotated[bool, Strict()] = Field(
        False,
        description="fine-tune each model's champion on the current data for a few epochs instead of training anew",
    )
    require_new_data: Annotated[bool, Strict()] = Field(
        False, description="train nothing when every selected model's champion was trained on the current dataset"
    )

    @field_validator("epochs")
    @classmethod
    def _keep_selected_models(cls, epochs: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        """Names must be models; unselected ones are dropped (not refused), so a deployment can keep per-model
        epochs as defaults while a run narrows `models`."""
        unknown = [name for name in epochs if name not in model_names()]
        if unknown:
            raise ValueError(f"expected a model name ({', '.join(model_names())}), found {unknown[0]!r}")
        selected = info.data.get("models", ())
        return {name: number for name, number in epochs.items() if name in selected}

    @field_validator("dask_address")
    @classmethod
    def _check_dask_address(cls, address: str | None, info: ValidationInfo) -> str | None:
        if not address:
            return None
        if info.data.get("task_runner") != "dask":
            raise ValueError(f"only used with task_runner=dask, found task_runner={info.data.get('task_runner')!r}")
        if not address.startswith(("tcp://", "tls://", "inproc://")):
            raise ValueError(f"expected tcp://HOST:PORT, found {address!r}")
        return address

    def promotion_limits(self) -> str | None:
        """The limits that keep this run away from the champions (e.g. `--train-limit 2000`), or None."""
        limits = (("--train-limit", self.train_limit), ("--test-limit", self.test_limit))
        shown = [f"{option} {value}" for option, value in limits if value is not None]
        return None if self.promote_limited or not shown else ", ".join(shown)

    def to_parameters(self) -> dict[str, Any]:
        """JSON-friendly values, as Prefect flow parameters and metrics.json record them."""
        return self.model_dump(mode="json")

    def resolve_dirs(self) -> Self:
        """The same configuration with absolute directories (relative ones are read from the working directory)."""
        return self.model_copy(update={"data_dir": self.data_dir.resolve(), "reports_dir": self.reports_dir.resolve()})


def describe_errors(error: ValidationError) -> str:
    """One line naming each bad value, as parameter and as option: `seed (--seed): ..., found 'x'`."""
    parts = []
    for item in error.errors():
        name, *keys = item["loc"]
        where = f"{name}{''.join(f'[{key}]' for key in keys)} (--{str(name).replace('_', '-')})"
        if item["type"] == "value_error":
            text = str(item["ctx"]["error"])
        else:
            text = f"{item['msg'][:1].lower()}{item['msg'][1:]}, found {item['input']!r}"
        parts.append(f"{where}: {text}")
    return "; ".join(parts)


def build_config(**values: Any) -> RunConfig:
    """Validate raw values (CLI options or flow parameters; missing ones take their defaults) into a RunConfig."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        raise PipelineError(describe_errors(exc)) from None


def takes_run_parameters(function: F) -> F:
    """Give `function(**parameters)` one keyword parameter per RunConfig field: its JSON default, type, description.

    Prefect reads a flow's parameters from `inspect.signature`, which honours `__signature__`; a `config: RunConfig`
    parameter would nest every option and break `--param seed=1` and prefect.yaml's flat `parameters:`.
    """
    values = RunConfig().to_parameters()
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=Field(values[name], description=field.description),
            annotation=field.rebuild_annotation(),
        )
        for name, field in RunConfig.model_fields.items()
    ]
    function.__signature__ = inspect.signature(function).replace(parameters=parameters)  # type: ignore[attr-defined]
    return function
