"""Digits by writers outside MNIST, at another resolution, as an ImageFolder: the demo batch for `add-data`.

The source is the UCI optical-recognition digits (optdigits) test set as scikit-learn bundles it: 1 797 images of
8x8 cells with 0..16 levels, written by 43 people who are not MNIST's writers. It is read out of the scikit-learn
wheel, which pip downloads and nothing installs; the wheel's and the member's sha256 are pinned below.

Each image is scaled to 0..255, upscaled to 32x32 with bilinear interpolation and written as dark ink on white
paper with a 4-pixel margin (40x40 PNG). Why this form: each 0..16 value is the ink count of a 4x4 block of the
writer's original 32x32 bitmap, an area average; bilinear interpolation between the block centres is the plain
linear reconstruction of such samples, soft stroke edges as a low-resolution scan has, without the overshoot that
bicubic adds on a 4x enlargement or the blocks of nearest neighbour. The paper and margin are what a scan looks
like; `add-data`'s MNIST-style preprocessing (the same as `predict`'s) then inverts, crops and centres it, and 40x40
is not 28x28, so the resizing path is exercised.

    .venv/bin/python bench/other_writers.py --out /tmp/other-writers [--size 1000]
    .venv/bin/mnist-pipeline add-data /tmp/other-writers --note "optdigits writers"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_pipeline.data.sources.pypi import PickleWheel, fetch_wheel, read_member
from mnist_pipeline.errors import PipelineError

SKLEARN_DIGITS = PickleWheel(
    requirement="scikit-learn==1.7.2",
    filename="scikit_learn-1.7.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256="89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
    member="sklearn/datasets/data/digits.csv.gz",
    member_sha256="09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
)
PIP_ARGS = ("--python-version", "3.11", "--platform", "manylinux_2_17_x86_64")
ROWS, SIDE, LEVELS = 1797, 8, 16
DIGIT_SIDE, MARGIN = 32, 4
SAMPLE_SEED = 2026


def read_digits(csv: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 8, 8) in 0..16, labels (n,)) from the member's CSV: 64 pixel values then the label."""
    values = np.loadtxt(csv.decode().splitlines(), delimiter=",", dtype=np.int64)
    if values.shape != (ROWS, SIDE * SIDE + 1) or values[:, :-1].min() < 0 or values[:, :-1].max() > LEVELS:
        raise PipelineError(f"{SKLEARN_DIGITS.member}: expected {ROWS} rows of 64 values in 0..16 and a label")
    return values[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8), values[:, -1]


def draw_scan(cells: np.ndarray) -> Image.Image:
    """One 8x8 digit as a 40x40 grayscale scan: 0..255, bilinear to 32x32, dark ink on white, 4 px margin."""
    ink = Image.fromarray((cells.astype(np.float32) * (255 / LEVELS)).astype(np.uint8))
    smooth = np.asarray(ink.resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BILINEAR))
    paper = np.full((DIGIT_SIDE + 2 * MARGIN,) * 2, 255, dtype=np.uint8)
    paper[MARGIN:-MARGIN, MARGIN:-MARGIN] = 255 - smooth
    return Image.fromarray(paper)


def write_folder(out: Path, size: int, cache: Path) -> int:
    """Write `size` digits (a seeded sample; all 1 797 by default) as `out/<digit>/<index>.png`."""
    wheel = fetch_wheel(cache, SKLEARN_DIGITS, PIP_ARGS)
    images, labels = read_digits(read_member(wheel, SKLEARN_DIGITS))
    chosen = np.sort(np.random.default_rng(SAMPLE_SEED).permutation(len(images))[:size])
    for index in chosen:
        folder = out / str(int(labels[index]))
        folder.mkdir(parents=True, exist_ok=True)
        draw_scan(images[index]).save(folder / f"optdigits-{index:04d}.png")
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="ImageFolder to write (must not exist)")
    parser.add_argument("--size", type=int, default=ROWS, help=f"how many digits, 1..{ROWS} (default: all)")
    parser.add_argument(
        "--cache", type=Path, default=Path("data/raw"), help="where the wheel is kept (default: data/raw)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.size <= ROWS:
        parser.error(f"--size: expected 1..{ROWS}, found {args.size}")
    if args.out.exists():
        parser.error(f"--out: expected a folder that does not exist yet, found {args.out}")
    try:
        written = write_folder(args.out, args.size, args.cache)
    except PipelineError as exc:
        print(f"other_writers: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written} digits (UCI optdigits writers, 40x40 scans) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
