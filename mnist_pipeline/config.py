"""One typed run configuration: CLI options and flow parameters both become a RunConfig.

Parsing here (not in Prefect) keeps the rules in one place and lets bad values fail before any work starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnist_pipeline import defaults
from mnist_pipeline.champion.rule import PromotionPolicy
from mnist_pipeline.data.image_shape import format_image_shape, parse_image_shape
from mnist_pipeline.data.sources import parse_source
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.hardware import PRECISIONS
from mnist_pipeline.modeling.profiles import profile_names
from mnist_pipeline.modeling.registry import model_names

TASK_RUNNERS = ("threads", "processes", "dask")


@dataclass(frozen=True)
class RunConfig:
    """Everything one pipeline run depends on."""

    source: str = defaults.SOURCE
    models: tuple[str, ...] = field(default_factory=model_names)
    profile: str = defaults.PROFILE
    epochs: dict[str, int] = field(default_factory=dict)
    precision: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    task_runner: str = defaults.TASK_RUNNER
    dask_address: str | None = None
    data_dir: Path = defaults.DATA_DIR
    reports_dir: Path = defaults.REPORTS_DIR
    seed: int = defaults.SEED
    promotion_margin: float = defaults.PROMOTION_MARGIN
    max_recall_drop: float = defaults.MAX_RECALL_DROP
    image_shape: tuple[int, int] = defaults.IMAGE_SHAPE
    promote_limited: bool = False

    def promotion_limits(self) -> str | None:
        """The limits that keep this run away from the champions (e.g. `--train-limit 2000`), or None."""
        limits = (("--train-limit", self.train_limit), ("--test-limit", self.test_limit))
        shown = [f"{option} {value}" for option, value in limits if value is not None]
        return None if self.promote_limited or not shown else ", ".join(shown)

    def to_parameters(self) -> dict[str, Any]:
        """JSON-friendly values, as Prefect flow parameters and metrics.json record them."""
        params = asdict(self)
        params.update(
            models=list(self.models),
            data_dir=str(self.data_dir),
            reports_dir=str(self.reports_dir),
            image_shape=format_image_shape(self.image_shape),
        )
        return params


def _positive_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PipelineError(f"{name}: expected a positive integer, found {value!r}")
    return value


def parse_models(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Accept 'a,b' or a list; refuse unknown or repeated names."""
    known = model_names()
    if value is None:
        return known
    names = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    names = [name for name in names if name]
    unknown = [name for name in names if name not in known]
    if not names or unknown or len(set(names)) != len(names):
        found = ", ".join(map(repr, unknown)) if unknown else repr(value)
        raise PipelineError(f"models: expected one or more distinct of {', '.join(known)}, found {found}")
    return tuple(names)


def parse_epochs(value: dict[str, Any] | list[str] | None, models: tuple[str, ...]) -> dict[str, int]:
    """Accept {NAME: 3} or ['NAME=3']; names must be known models, N positive; unselected models are dropped.

    Dropping (not refusing) unselected names lets a deployment keep per-model epochs as defaults while a run
    narrows `models`.
    """
    if not value:
        return {}
    pairs: dict[str, Any] = {}
    if isinstance(value, dict):
        pairs = dict(value)
    else:
        for item in value:
            name, sep, number = str(item).partition("=")
            if not sep or not number.strip().isdigit():
                raise PipelineError(f"epochs: expected NAME=N (e.g. {model_names()[-1]}=3), found {item!r}")
            pairs[name.strip()] = int(number)
    for name, number in pairs.items():
        if name not in model_names():
            raise PipelineError(f"epochs: expected a model name ({', '.join(model_names())}), found {name!r}")
        _positive_or_none(f"epochs[{name}]", number)
    return {name: int(number) for name, number in pairs.items() if name in models}


def build_config(**values: Any) -> RunConfig:
    """Validate raw values (from the CLI or from Prefect parameters) into a RunConfig."""
    models = parse_models(values.get("models"))
    source = str(values.get("source") or defaults.SOURCE)
    parse_source(source)
    profile = values.get("profile") or defaults.PROFILE
    if profile not in profile_names():
        raise PipelineError(f"profile: expected one of {', '.join(profile_names())}, found {profile!r}")
    precision = values.get("precision") or None
    if precision is not None and precision not in PRECISIONS:
        raise PipelineError(f"precision: expected one of {', '.join(PRECISIONS)}, found {precision!r}")
    runner = values.get("task_runner") or defaults.TASK_RUNNER
    if runner not in TASK_RUNNERS:
        raise PipelineError(f"task_runner: expected one of {', '.join(TASK_RUNNERS)}, found {runner!r}")
    address = values.get("dask_address")
    if address and runner != "dask":
        raise PipelineError(f"dask_address: only used with task_runner=dask, found task_runner={runner!r}")
    if address and not str(address).startswith(("tcp://", "tls://", "inproc://")):
        raise PipelineError(f"dask_address: expected tcp://HOST:PORT, found {address!r}")
    seed = values.get("seed", defaults.SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PipelineError(f"seed: expected a non-negative integer, found {seed!r}")
    policy = PromotionPolicy(
        min_accuracy_gain=values.get("promotion_margin", defaults.PROMOTION_MARGIN),
        max_recall_drop=values.get("max_recall_drop", defaults.MAX_RECALL_DROP),
    )
    return RunConfig(
        source=source,
        models=models,
        profile=profile,
        epochs=parse_epochs(values.get("epochs"), models),
        precision=precision,
        train_limit=_positive_or_none("train_limit", values.get("train_limit")),
        test_limit=_positive_or_none("test_limit", values.get("test_limit")),
        task_runner=runner,
        dask_address=address or None,
        data_dir=Path(values.get("data_dir") or defaults.DATA_DIR),
        reports_dir=Path(values.get("reports_dir") or defaults.REPORTS_DIR),
        seed=seed,
        promotion_margin=policy.min_accuracy_gain,
        max_recall_drop=policy.max_recall_drop,
        image_shape=parse_image_shape(values.get("image_shape")),
        promote_limited=_flag("promote_limited", values.get("promote_limited", False)),
    )


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PipelineError(f"{name}: expected true or false, found {value!r}")
    return value
