"""Calibration and abstention of a champion, on MNIST test and on digit populations it was never trained on.

For each population, the champion answers the way `predict` answers a folder (the population's own threshold,
raised above the held-out images' one when the digits are unfamiliar) and the way it answers one image at a time
(the held-out images' threshold alone). Printed as markdown rows for bench/RESULTS.md: accuracy when it answers
everything, then coverage and the error among answered images at the target. ECE before and after calibration
comes from the champion's evaluation on MNIST test and its held-out rows.

Populations: MNIST test itself; the UCI optdigits writers (`other_writers.py`, 43 other people, 8x8 cells
upscaled); and MNIST test digits redrawn as other pens and scanners would give them: bolder (grey dilation 3x3),
thinner (erosion 2x2), low-resolution (7x7 box-averaged, then bilinear), rotated (uniform +-20 degrees) and moved
(+-3 pixels). The redrawn ones share MNIST's writers; they stand for other pens and scanners, not other people.

    .venv/bin/python bench/bench_trust.py [--data-dir data] [--model cnn] [--target-error 0.005]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from machine import describe_cpu
from other_writers import write_folder  # beside this script: bench/ is on the path
from PIL import Image
from scipy import ndimage

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.evaluation import evaluate_model
from mnist_pipeline.modeling.serving import open_engine
from mnist_pipeline.predict.answer import predict_images
from mnist_pipeline.predict.inputs import load_inputs
from mnist_pipeline.predict.model_choice import choose_model
from mnist_pipeline.predict.preprocess import to_mnist_style_batch


def redraw(images: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits as another pen or scanner would give them (see the module docstring)."""
    if how == "bolder":
        return ndimage.grey_dilation(images, size=(1, 3, 3))
    if how == "thinner":
        return ndimage.grey_erosion(images, size=(1, 2, 2))
    if how == "low-resolution":
        return np.stack(
            [
                np.asarray(
                    Image.fromarray(image)
                    .resize((7, 7), Image.Resampling.BOX)
                    .resize((28, 28), Image.Resampling.BILINEAR)
                )
                for image in images
            ]
        )
    if how == "rotated":
        return np.stack(
            [ndimage.rotate(image, rng.uniform(-20, 20), reshape=False, order=1) for image in images]
        ).astype(np.uint8)
    if how == "moved":
        return np.stack([np.roll(image, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1)) for image in images])
    raise ValueError(how)


def populations(
    layout: DataLayout, shape: tuple[int, int], cache: Path
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    test = read_split(layout.split_file("test"))
    yield "MNIST test", test.images, test.labels.astype(np.int64)
    with tempfile.TemporaryDirectory(prefix="optdigits-") as folder:
        write_folder(Path(folder) / "digits", 1797, cache)
        paths = sorted((Path(folder) / "digits").rglob("*.png"))
        loaded = load_inputs(paths, shape)
        labels = np.array([int(Path(name).parent.name) for name in loaded.names])
        yield "optdigits writers (UCI)", loaded.images, labels
    rng = np.random.default_rng(2026)
    sample = rng.permutation(test.rows)[:3000]
    for how in ("bolder", "thinner", "low-resolution", "rotated", "moved"):
        # Prepared as `predict` prepares any image it is given (re-centred when off-centre, for instance).
        prepared, failed = to_mnist_style_batch(redraw(test.images[sample], how, rng), shape)
        kept = np.setdiff1d(np.arange(len(sample)), list(failed))
        yield f"MNIST redrawn {how}", prepared[kept], test.labels[sample][kept].astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--target-error", type=float, default=defaults.TARGET_ERROR)
    args = parser.parse_args(argv)
    layout = DataLayout(args.data_dir)
    choice = choose_model(args.model, layout)
    engine = open_engine(layout, choice.model, choice.key)
    calibration = engine.calibration
    print(f"{describe_cpu()}; {choice.describe()}; temperature {calibration.temperature:.3f}")
    test = read_split(layout.split_file("test"))
    scored = evaluate_model(engine, test, args.target_error)
    print(
        f"ECE on MNIST test: {100 * scored.calibration['ece_before']:.2f} % before, "
        f"{100 * scored.calibration['ece_after']:.2f} % after; on its {calibration.held_out_rows} held-out rows: "
        f"{100 * (calibration.ece_before or 0):.2f} % before, {100 * (calibration.ece_after or 0):.2f} % after"
    )
    print(
        "\n| population | images | accuracy, all answered | as a folder: answered / error | one at a time: "
        "answered / error |\n|---|---:|---:|---:|---:|"
    )
    single_threshold = calibration.threshold(args.target_error)
    for name, images, labels in populations(layout, engine.input_shape, args.data_dir / "raw"):
        predictions = predict_images(engine, images, [str(i) for i in range(len(images))], args.target_error).items
        right = np.array([p.top for p in predictions]) == labels
        as_folder = ~np.array([p.unsure for p in predictions])
        one_at_a_time = np.array([p.probability >= single_threshold for p in predictions])
        cells = [
            f"{100 * answered.mean():.1f} % / {100 * (1 - right[answered].mean()) if answered.any() else 0.0:.2f} %"
            for answered in (as_folder, one_at_a_time)
        ]
        print(f"| {name} | {len(images)} | {100 * right.mean():.2f} % | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
