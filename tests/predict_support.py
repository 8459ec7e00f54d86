"""Real digit pictures and a real trained champion for the predict tests.

The suite has no MNIST download, so the "test digits" are the digits 0-9 drawn with Pillow's built-in font,
jittered (size, rotation, stroke width, position) and brought to MNIST style; a small CNN trained on them for
real (2 epochs, mixed bfloat16 like the default profile), calibrated on drawings it never saw (as evaluation
calibrates a run's models on their held-out rows), is registered as the champion of a temporary data dir.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_pipeline.predict.preprocess import to_mnist_style

# A default-profile-like config trimmed to seconds: two epochs, bfloat16 hidden layers.
TRAIN_SETTINGS = {"profile": "default", "epochs": 2, "batch_size": 64, "learning_rate": 3e-3}


def draw_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One jittered drawing of `digit`, light on black, in MNIST style (uint8 28x28)."""
    font = ImageFont.load_default(size=int(rng.integers(34, 48)))
    canvas = Image.new("L", (64, 64), 0)
    offset = rng.integers(4, 12, size=2)
    stroke = int(rng.integers(0, 3))
    ImageDraw.Draw(canvas).text(
        (int(offset[0]), int(offset[1])), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    return to_mnist_style(np.asarray(canvas))


def draw_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` drawings, labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    return np.stack([draw_digit(int(label), rng) for label in labels]), labels.astype(np.int64)


def write_styled(digit: np.ndarray, style: str, path: Path) -> Path:
    """Save a 28x28 digit as a person might bring it; returns the path written."""
    if style == "plain":
        Image.fromarray(digit).save(path)
    elif style == "inverted":  # dark ink on white, same size
        Image.fromarray(255 - digit).save(path)
    elif style == "upscaled":  # inverted, 112x112 JPEG
        big = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
        Image.fromarray(255 - np.asarray(big)).save(path, quality=85)
    elif style == "tinted":  # light ink on a teal RGB card, off-centre on an 80x60 canvas
        canvas = np.empty((60, 80, 3))
        canvas[:] = (40, 110, 120)
        alpha = digit[..., np.newaxis] / 255
        canvas[25:53, 45:73] = canvas[25:53, 45:73] * (1 - alpha) + np.array([250, 240, 200]) * alpha
        Image.fromarray(np.rint(canvas).astype(np.uint8)).save(path)
    elif style == "transparent":  # black ink on a transparent background, RGBA
        rgba = np.zeros((28, 28, 4), dtype=np.uint8)
        rgba[..., 3] = digit
        Image.fromarray(rgba).save(path)
    else:
        raise ValueError(style)
    return path


STYLE_SUFFIX = {"plain": ".png", "inverted": ".bmp", "upscaled": ".jpg", "tinted": ".png", "transparent": ".png"}


@functools.cache
def train_champion(root: Path) -> Path:
    """Train a CNN on drawn digits, save it and make it the `cnn` champion of `root/data`; returns that data dir."""
    from mnist_pipeline.champion.registry import force_promote
    from mnist_pipeline.champion.rule import Candidate
    from mnist_pipeline.data.dataset import Split
    from mnist_pipeline.modeling.calibration import calibration_file, fit_calibration, save_calibration
    from mnist_pipeline.modeling.model_files import save_model, to_engine
    from mnist_pipeline.modeling.profiles import TrainConfig
    from mnist_pipeline.modeling.training import configure_tensorflow, train_model

    configure_tensorflow(None, deterministic=True)
    images, labels = draw_digits(2000, seed=1)
    config = TrainConfig(**TRAIN_SETTINGS, precision="mixed_bfloat16")
    model = train_model("cnn", config, Split(images=images, labels=labels), seed=7).model
    data_dir = root / "data"
    path = data_dir / "models" / "cnn" / "drawn-digits.keras"
    save_model(model, path)
    held_out, held_out_labels = draw_digits(500, seed=2)
    save_calibration(fit_calibration(to_engine(model).logits(held_out), held_out_labels), calibration_file(path))
    candidate = Candidate("drawn-digits", str(path), "run-drawn", "f" * 64, 2000, 0.99, (0.99,) * 10)
    force_promote(
        data_dir / "models" / "champions.json", "cnn", candidate, "test champion", "2026-11-27T00:00:00+00:00"
    )
    return data_dir
