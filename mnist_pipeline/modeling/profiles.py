"""Training profiles: `seed` replays the seed study's training, `default` is tuned for accuracy and speed, `best`
for accuracy alone (per-model settings live in the model registry).

A TrainConfig is plain data (JSON via `to_dict()`, back via `TrainConfig(**d)`) so it can be a cache key and a
Prefect parameter. Why `default` looks the way it does: bench/RESULTS.md, section "Training profile".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.hardware import PRECISIONS, PrecisionChoice, resolve_precision
from mnist_pipeline.modeling.registry import find_model

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; every field is used by `training.train_model`.

    lr_schedule: "constant", or "cosine" (decay from learning_rate to 0 over the planned epochs, after a linear
    warm-up over warmup_epochs). validation_fraction of train is held out (seeded shuffle) for early stopping on
    val_loss with `early_stopping_patience` epochs of patience (None: no early stopping); the best epoch's
    weights are kept. precision "mixed_bfloat16" computes the hidden layers in bfloat16 (float32 weights and
    output layer): on CPUs with AMX/AVX512-BF16 that is several times the float32 matmul throughput, elsewhere
    slower than float32. "auto" picks by hardware (`hardware.resolve_precision`); `resolve_config` returns
    configs with the resolved value, which is what cache keys and metrics.json hold. augment_shift (pixels) and
    augment_rotation (degrees) randomly move each training image per batch (seeded; see augmentation.py).
    increment_share is the part of each epoch that accepted increments' rows make up at least, by repeating them
    (`augmentation.weigh_increments`); 0 trains on them as on any other row.
    """

    profile: str
    epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    validation_fraction: float = 0.0
    early_stopping_patience: int | None = None
    precision: str = "float32"
    augment_shift: float = 0.0
    augment_rotation: float = 0.0
    increment_share: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise PipelineError(f"train config: expected positive epochs, batch size and learning rate, found {self}")
        if not 0.0 <= self.warmup_epochs < self.epochs:
            raise PipelineError(f"warmup_epochs: expected 0 <= w < epochs ({self.epochs}), found {self.warmup_epochs}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise PipelineError(f"lr_schedule: expected one of {', '.join(LR_SCHEDULES)}, found {self.lr_schedule!r}")
        if self.precision not in PRECISIONS:
            raise PipelineError(f"precision: expected one of {', '.join(PRECISIONS)}, found {self.precision!r}")
        if not (0.0 <= self.augment_shift <= 8.0 and 0.0 <= self.augment_rotation <= 45.0):
            raise PipelineError(
                "augmentation: expected a shift of 0..8 pixels and a rotation of 0..45 degrees, "
                f"found {self.augment_shift} and {self.augment_rotation}"
            )
        if not 0.0 <= self.increment_share <= 0.5:
            raise PipelineError(f"increment_share: expected 0 <= share <= 0.5, found {self.increment_share}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise PipelineError(f"validation_fraction: expected 0 <= f < 1, found {self.validation_fraction}")
        if self.early_stopping_patience is not None and self.validation_fraction == 0.0:
            raise PipelineError("early_stopping_patience: needs a validation split, found validation_fraction 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Each profile's settings for every model; a model's registry entry may replace some of them for that profile.
# Order: the seed study's settings first, then ours, as the report compares them.
PROFILES: dict[str, dict[str, Any]] = {
    "seed": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3, "lr_schedule": "constant"},
    "default": {
        "epochs": 8,
        "batch_size": 512,
        "learning_rate": 1e-2,
        "lr_schedule": "cosine",
        "validation_fraction": 0.05,
        "early_stopping_patience": 3,
        "increment_share": 0.1,
    },
    # The seed's layers trained as well as a small search on the validation split found (bench/RESULTS.md,
    # "The best profile"): seeded shifts and rotations for the two models with hidden layers (they hurt the
    # linear model), mild enough to help on Fashion-MNIST too ("The best profile on Fashion-MNIST"), longer cosine
    # schedules, no early stopping (the schedule ends at a learning rate of 0).
    "best": {
        "epochs": 40,
        "batch_size": 256,
        "learning_rate": 5e-3,
        "lr_schedule": "cosine",
        "warmup_epochs": 1.0,
        "validation_fraction": 0.05,
        "augment_shift": 1.0,
        "augment_rotation": 5.0,
        "increment_share": 0.1,
    },
}


def profile_names() -> tuple[str, ...]:
    return tuple(PROFILES)


def _profile_config(profile: str, model: str) -> TrainConfig:
    if profile not in PROFILES:
        raise PipelineError(f"profile: expected one of {', '.join(PROFILES)}, found {profile!r}")
    overrides = find_model(model).profiles.get(profile, {})
    return TrainConfig(profile=profile, **{**PROFILES[profile], **overrides})


def choose_precision(profile: str, model: str, precision: str | None = None) -> PrecisionChoice:
    """The precision `model` trains in on this machine and why: `precision` (--precision) or the profile's."""
    requested = precision or _profile_config(profile, model).precision
    if requested not in PRECISIONS:
        raise PipelineError(f"precision: expected one of {', '.join(PRECISIONS)}, found {requested!r}")
    return resolve_precision(requested)


def resolve_config(profile: str, model: str, epochs: int | None = None, precision: str | None = None) -> TrainConfig:
    """The training config for `model` under `profile`, with precision resolved for this machine.

    `epochs` (from --epochs NAME=N) and `precision` (--precision) override the profile's values.
    """
    config = _profile_config(profile, model)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    return replace(config, precision=choose_precision(profile, model, precision).precision)


# A warm start fine-tunes the champion for this many epochs (the profile's count when it has fewer); why two:
# bench/RESULTS.md, "Warm start".
WARM_START_EPOCHS = 2


def fine_tuning_config(config: TrainConfig) -> TrainConfig:
    """`config` for fine-tuning a trained model: the same optimizer and schedule over WARM_START_EPOCHS epochs,
    without a warm-up (the weights are already trained; a warm-up protects random ones)."""
    return replace(config, epochs=min(config.epochs, WARM_START_EPOCHS), warmup_epochs=0.0)
