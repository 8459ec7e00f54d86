"""MNIST-style preprocessing: make a picture of a digit look like the images the models were trained on
(docs/predict.md, Preprocessing).

Measured on MNIST's 70 000 images: every ink box is at most 20x20, every border is black, and every centre of mass
lies within 0.52 px of index (14.0, 14.0). A photo or scan differs in each, and a model fed it as it is answers at
chance; `to_mnist_style` undoes the differences.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mnist_pipeline.errors import DataFormatError, describe_problem

MNIST_SHAPE = (28, 28)
# The ink box MNIST scales to, as a fraction of the frame: 20 of 28 pixels.
BOX_FRACTION = 20 / 28
# Fewer grey levels than this between the background and the brightest pixel: there is no ink to read.
MIN_CONTRAST = 32
# After stretching the ink to 0..1: below NOISE is background (JPEG ringing, paper grain); at or above INK is
# ink for the bounding box.
NOISE = 0.15
INK = 0.3
# How far (pixels) an image's centre of mass may be from the frame's centre and still count as MNIST-style.
CENTRE_TOLERANCE = 1.0


class EmptyImageError(DataFormatError):
    """The image has no pixels, or no ink that stands out from its background."""


def to_mnist_style(image: Image.Image | np.ndarray, shape: tuple[int, int] = MNIST_SHAPE) -> np.ndarray:
    """A uint8 `shape` array of the digit in `image`, prepared the way MNIST was made (steps in docs/predict.md):
    grayscale (transparency laid on contrasting paper; `inputs.read_image` applied the EXIF rotation), polarity,
    then an image already MNIST-style is returned unchanged (MNIST's own images pass through); else contrast, crop
    to the ink, scale into 20x20 and centre by mass. Raises EmptyImageError without ink or pixels.
    """
    gray = to_grayscale(image)
    if gray.size == 0:
        raise EmptyImageError(f"expected an image with pixels, found a {gray.shape[1]}x{gray.shape[0]} image")
    gray = fix_polarity(gray)
    if is_mnist_style(gray[np.newaxis], shape)[0]:
        return gray
    ink = normalise_contrast(gray)
    box = (round(shape[0] * BOX_FRACTION), round(shape[1] * BOX_FRACTION))
    return centre_by_mass(scale_to_box(crop_to_ink(ink), box), shape)


def to_grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 (height, width) luma; 16-bit and float images are stretched to 0..255."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2 and image.dtype == np.uint8:
            return image
        image = Image.fromarray(image)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
        return np.rint((values - low) * (255 / max(high - low, 1e-12))).astype(np.uint8)
    if "A" in image.getbands() or "transparency" in image.info:
        return _lay_on_paper(np.asarray(image.convert("LA"), dtype=np.float64))
    return np.asarray(image.convert("L"))


def _lay_on_paper(luma_alpha: np.ndarray) -> np.ndarray:
    """Composite a transparent image on white when its ink is dark, on black when its ink is light."""
    luma, alpha = luma_alpha[..., 0], luma_alpha[..., 1] / 255
    covered = alpha.sum()
    ink_luma = (luma * alpha).sum() / covered if covered else 0.0
    paper = 255.0 if ink_luma < 128 else 0.0
    return np.rint(luma * alpha + paper * (1 - alpha)).astype(np.uint8)


def border_pixels(images: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of each image in (n, h, w), as (n, ring length)."""
    return np.concatenate([images[:, 0, :], images[:, -1, :], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1)


def fix_polarity(gray: np.ndarray) -> np.ndarray:
    """Light ink on a dark background: invert when the ink is darker than the background.

    The background is the border's median; the ink is whatever departs furthest from it, downwards (dark ink
    on paper) or upwards (chalk on a board, light ink on a tinted card). So mid-grey backgrounds work both ways.
    """
    background = float(np.median(border_pixels(gray[np.newaxis])))
    if background - float(gray.min()) > float(gray.max()) - background:
        return 255 - gray
    return gray


def is_mnist_style(images: np.ndarray, shape: tuple[int, int] = MNIST_SHAPE) -> np.ndarray:
    """Per image of uint8 (n, h, w): True when it already looks like MNIST (see `to_mnist_style`, step 3)."""
    n, height, width = images.shape
    if (height, width) != tuple(shape) or n == 0:
        return np.zeros(n, dtype=bool)
    inked = images > 0
    rows, cols = inked.any(axis=2), inked.any(axis=1)
    box_height = height - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    box_width = width - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1)
    mass = images.sum(axis=(1, 2), dtype=np.float64)
    safe_mass = np.where(mass == 0, 1.0, mass)
    centre_y = (images.sum(axis=2, dtype=np.float64) @ np.arange(height)) / safe_mass
    centre_x = (images.sum(axis=1, dtype=np.float64) @ np.arange(width)) / safe_mass
    return (
        (mass > 0)
        & (np.median(border_pixels(images), axis=1) == 0)
        & (box_height <= round(height * BOX_FRACTION))
        & (box_width <= round(width * BOX_FRACTION))
        & (np.abs(centre_y - height / 2) <= CENTRE_TOLERANCE)
        & (np.abs(centre_x - width / 2) <= CENTRE_TOLERANCE)
    )


def normalise_contrast(gray: np.ndarray) -> np.ndarray:
    """Ink strength in 0..1: the background level (border median) maps to 0, the brightest pixel to 1."""
    background = float(np.median(border_pixels(gray[np.newaxis])))
    top = float(gray.max())
    if top - background < MIN_CONTRAST:
        raise EmptyImageError(
            f"expected a digit standing out from its background, found a blank image "
            f"(every pixel within {top - background:.0f} grey levels of the background)"
        )
    ink = np.clip((gray - background) / (top - background), 0.0, 1.0)
    ink[ink < NOISE] = 0.0
    return ink


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels at least INK strong (there is one: the brightest pixel is 1.0)."""
    rows = np.flatnonzero((ink >= INK).any(axis=1))
    cols = np.flatnonzero((ink >= INK).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scale_to_box(patch: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """Resize so the patch just fits `box` (height, width), aspect kept; Lanczos anti-aliases downscaling."""
    height, width = patch.shape
    factor = min(box[0] / height, box[1] / width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resized = Image.fromarray(patch.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def centre_by_mass(patch: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Place the patch in a black `shape` frame, shifted by whole pixels so its centre of mass is the centre."""
    height, width = patch.shape
    mass = patch.sum()
    centre_y = (patch.sum(axis=1) @ np.arange(height)) / mass if mass else height / 2
    centre_x = (patch.sum(axis=0) @ np.arange(width)) / mass if mass else width / 2
    top = int(np.clip(round(shape[0] / 2 - centre_y), 0, shape[0] - height))
    left = int(np.clip(round(shape[1] / 2 - centre_x), 0, shape[1] - width))
    frame = np.zeros(shape, dtype=np.float64)
    frame[top : top + height, left : left + width] = patch
    return np.rint(frame * 255).astype(np.uint8)


def to_mnist_style_batch(images: np.ndarray, shape: tuple[int, int] = MNIST_SHAPE) -> tuple[np.ndarray, dict[int, str]]:
    """`to_mnist_style` for a uint8 (n, h, w) batch: MNIST-style images are checked at once and kept as they are.

    Returns the prepared (n, *shape) images and, per index that failed in any way, the problem (its row stays
    black).
    """
    prepared, failures = to_mnist_style_rows(images, shape)
    return prepared, {index: describe_problem(exc) for index, exc in failures.items()}


def to_mnist_style_rows(
    images: np.ndarray, shape: tuple[int, int] = MNIST_SHAPE
) -> tuple[np.ndarray, dict[int, Exception]]:
    """`to_mnist_style_batch` with each failure's exception instead of its line, for callers that tell an image
    without ink (EmptyImageError) from one that could not be prepared."""
    ready = is_mnist_style(images, shape)
    if ready.all():
        return images, {}
    prepared = np.zeros((images.shape[0], *shape), dtype=np.uint8)
    if ready.any():  # only images of the frame's shape can be ready
        prepared[ready] = images[ready]
    failures: dict[int, Exception] = {}
    for index in np.flatnonzero(~ready):
        try:
            prepared[index] = to_mnist_style(images[index], shape)
        except Exception as exc:  # one image's failure is its line, the batch goes on
            failures[int(index)] = exc
    return prepared, failures
