"""Train one registered model on a train split, repeatably.

Input pipelines run with tf.data autotuning off. With it on, each iterator starts a `tf_data_model` thread that
re-optimises the pipeline at growing intervals, and the iterator's destructor at the end of `fit` waits for that
thread: `fit` returned up to 38 s after its last epoch (bench/RESULTS.md, "The fit tail"). The pipelines here are
in-memory gathers with a fixed prefetch, so autotuning has nothing to tune.

Repeatability does not rest on global random state (other models may be training in other threads of the same
process): initial weights come from explicitly seeded initializers, the batch order and the validation split from
a numpy Generator seeded with `seed`, and TF op determinism removes run-to-run float differences.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.architectures import build_model
from mnist_pipeline.modeling.augmentation import augment_images, weigh_increments
from mnist_pipeline.modeling.calibration import held_out_rows
from mnist_pipeline.modeling.hardware import resolve_precision
from mnist_pipeline.modeling.model_files import load_model
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.resume import ResumeTraining

log = logging.getLogger(__name__)
_configure_lock = threading.Lock()
REPORTED_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
PREFETCH_BATCHES = 2
EPOCH_SECONDS = "epoch_seconds"
LOSS = "sparse_categorical_crossentropy"


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch, for progress logs: epoch is 1-based, epochs is the planned count."""

    epoch: int
    epochs: int
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """A trained model and how training went; history holds one list per metric, one value per epoch run.

    best_epoch (1-based) is the epoch whose weights the model has: the lowest val_loss when early stopping is on,
    else the last epoch.
    """

    model: keras.Model
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    epochs_run: int
    best_epoch: int
    seconds: float
    started_at: str
    finished_at: str
    resumed_from_epoch: int = 0


def configure_tensorflow(threads: int | None, deterministic: bool) -> None:
    """Size TF's thread pools (None: leave TF's choice) and turn on op determinism.

    Pool sizes can only be set before TF initialises its runtime; a second call in the same process keeps the
    pools it has (and logs a warning if they differ from the request), so calling this from every task is safe.
    """
    with _configure_lock:
        if threads is not None:
            _set_thread_pools(threads)
        if deterministic:
            tf.config.experimental.enable_op_determinism()


def _set_thread_pools(threads: int) -> None:
    current = tf.config.threading.get_intra_op_parallelism_threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        if current != threads:
            log.warning("TensorFlow already initialised with %s intra-op threads; keeping them", current or "default")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy, TF and Keras globally (training itself uses only explicitly seeded sources)."""
    keras.utils.set_random_seed(seed)


def _split_validation(train: Split, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers to fit on and to hold out (`calibration.held_out_rows`: calibration reuses the held-out ones);
    the test split is never touched here."""
    held = held_out_rows(train.rows, fraction, seed)
    kept = np.setdiff1d(np.arange(train.rows), held)
    if len(kept) == 0:
        raise PipelineError(f"validation split: {train.rows} training images leave none to train on")
    return kept, held


def _without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """No autotuning thread, so nothing for the iterator's destructor to wait for (see the module docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _shuffled_batches(
    split: Split, config: TrainConfig, rng: np.random.Generator, seed: int, first_epoch: int = 0
) -> tf.data.Dataset:
    """All epochs' batches in one stream, each epoch in its own seeded order (fit reads it with steps_per_epoch).

    Every epoch's order is drawn, so the generator ends in the same state; a resumed run starts the stream at
    `first_epoch`. With augmentation on, each batch is transformed with a stateless seed of (seed, epoch, step).
    """
    orders = np.stack([rng.permutation(split.rows) for _ in range(config.epochs)])
    images, labels = tf.constant(split.images), tf.constant(split.labels)
    augmenting = config.augment_shift > 0 or config.augment_rotation > 0

    def epoch_batches(epoch: tf.Tensor, order: tf.Tensor) -> tf.data.Dataset:
        batches = tf.data.Dataset.from_tensor_slices(order).batch(config.batch_size).enumerate()
        return batches.map(lambda step, idx: (epoch, step, idx))

    def load(epoch: tf.Tensor, step: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, idx)
        if augmenting:
            batch_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64) * 1_000_000 + step])
            batch = augment_images(batch, config.augment_shift, config.augment_rotation, batch_seed)
        return batch, tf.gather(labels, idx)

    remaining = np.arange(first_epoch, config.epochs, dtype=np.int64)
    epochs = tf.data.Dataset.from_tensor_slices((remaining, orders[first_epoch:]))
    return _without_autotune(epochs.flat_map(epoch_batches).map(load).prefetch(PREFETCH_BATCHES))


def _batches(split: Split, batch_size: int) -> tf.data.Dataset:
    """Fixed-order batches (validation): a dataset, not arrays, which Keras is slow to tear down after fit."""
    return _without_autotune(tf.data.Dataset.from_tensor_slices((split.images, split.labels)).batch(batch_size))


def _learning_rate(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.CosineDecay:
    if config.lr_schedule == "constant":
        return config.learning_rate
    warmup = round(config.warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=config.epochs * steps_per_epoch - warmup,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


class _EpochReporter(keras.callbacks.Callback):
    """Times each epoch and passes an EpochReport to the caller's hook.

    The epoch's seconds also go into the epoch's logs (EPOCH_SECONDS), so Keras's History and the resume state
    keep them with the other per-epoch values, also across a resume.
    """

    def __init__(self, epochs: int, on_epoch: Callable[[EpochReport], None] | None) -> None:
        super().__init__()
        self._epochs, self._on_epoch, self._started = epochs, on_epoch, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        if logs is not None:
            logs[EPOCH_SECONDS] = seconds
        if self._on_epoch is None:
            return
        metrics = {name: float(value) for name, value in (logs or {}).items() if name in REPORTED_METRICS}
        self._on_epoch(EpochReport(epoch + 1, self._epochs, metrics, seconds))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def train_model(
    name: str,
    config: TrainConfig,
    train: Split,
    seed: int,
    on_epoch: Callable[[EpochReport], None] | None = None,
    checkpoint: Path | None = None,
    warm_start: Path | None = None,
    increment_rows: int = 0,
) -> TrainResult:
    """Build model `name`, train it per `config`; same data + config + seed gives the same weights.

    The last `increment_rows` rows of `train` are accepted increments' rows: those fitted on weigh
    `config.increment_share` of each epoch (`augmentation.weigh_increments`).

    With `checkpoint`, the state is saved there at each epoch end and a saved state is resumed
    (mnist_pipeline.modeling.resume). With `warm_start` (a saved `.keras` model), training starts from that
    model's weights instead of new ones, with a fresh optimizer: fine-tuning, as repeatable as training anew.
    """
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    kept, held = _split_validation(train, config.validation_fraction, seed)
    fit_split = weigh_increments(
        Split(images=train.images[kept], labels=train.labels[kept]),
        is_new=kept >= train.rows - increment_rows,
        share=config.increment_share,
        seed=seed,
    )
    val_split = Split(images=train.images[held], labels=train.labels[held]) if len(held) else None
    steps_per_epoch = math.ceil(fit_split.rows / config.batch_size)
    if warm_start is None:
        precision = resolve_precision(config.precision).precision
        model = build_model(name, image_shape=train.images.shape[1:], seed=seed, dtype_policy=precision)
    else:
        model = load_model(warm_start)  # uncompiled: compiled below with a fresh optimizer
    optimizer = keras.optimizers.Adam(learning_rate=_learning_rate(config, steps_per_epoch))
    model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    callbacks: list[keras.callbacks.Callback] = [_EpochReporter(config.epochs, on_epoch)]
    early_stop = None
    if config.early_stopping_patience is not None:
        early_stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
        )
        callbacks.append(early_stop)
    resume = None if checkpoint is None else ResumeTraining(checkpoint, name, early_stop)
    initial_epoch = 0 if resume is None else resume.initial_epoch_for(config.epochs)
    if resume is not None:
        callbacks.append(resume)
    validation = None if val_split is None else _batches(val_split, 1024)
    started_at, started = _now(), time.perf_counter()
    history = model.fit(
        _shuffled_batches(fit_split, config, rng, seed, first_epoch=initial_epoch),
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    per_epoch = resume.history if resume is not None else history.history
    per_epoch = {key: [float(v) for v in values] for key, values in per_epoch.items()}
    epoch_seconds = [round(value, 3) for value in per_epoch.pop(EPOCH_SECONDS, [])]
    epochs_run = len(per_epoch.get("loss", []))
    stopping = config.early_stopping_patience is not None
    best_epoch = int(np.argmin(per_epoch["val_loss"])) + 1 if stopping else epochs_run
    return TrainResult(
        model=model,
        history=per_epoch,
        epoch_seconds=epoch_seconds,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        seconds=seconds,
        started_at=started_at,
        finished_at=_now(),
        resumed_from_epoch=0 if resume is None else resume.initial_epoch,
    )
