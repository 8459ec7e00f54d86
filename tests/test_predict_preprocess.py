"""MNIST-style preprocessing on its own: real Pillow-written files in the styles people bring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.predict.inputs import read_image
from mnist_pipeline.predict.preprocess import EmptyImageError, is_mnist_style, to_mnist_style, to_mnist_style_batch
from tests.predict_support import draw_digits, write_styled


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return draw_digits(10, seed=5)[0]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    mass = image.sum(dtype=np.float64)
    return image.sum(axis=1) @ np.arange(28) / mass, image.sum(axis=0) @ np.arange(28) / mass


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_mnist_style_images_pass_through_unchanged(digits: np.ndarray, tmp_path: Path) -> None:
    assert is_mnist_style(digits).all()
    for digit in digits:
        plain = to_mnist_style(read_image(write_styled(digit, "plain", tmp_path / "d.png")))
        assert np.array_equal(plain, digit)
        inverted = to_mnist_style(read_image(write_styled(digit, "inverted", tmp_path / "d.bmp")))
        assert np.array_equal(inverted, digit)


@pytest.mark.parametrize(("style", "suffix"), [("upscaled", ".jpg"), ("tinted", ".png"), ("transparent", ".png")])
def test_other_styles_come_out_like_the_mnist_original(
    digits: np.ndarray, tmp_path: Path, style: str, suffix: str
) -> None:
    for index, digit in enumerate(digits):
        prepared = to_mnist_style(read_image(write_styled(digit, style, tmp_path / f"{index}{suffix}")))
        assert prepared.shape == (28, 28)
        assert prepared.dtype == np.uint8
        assert correlation(prepared, digit) > 0.7, (style, index)
        centre_y, centre_x = centre_of_mass(prepared)
        assert abs(centre_y - 14) <= 0.5 and abs(centre_x - 14) <= 0.5
        ink_rows, ink_cols = np.flatnonzero(prepared.any(axis=1)), np.flatnonzero(prepared.any(axis=0))
        assert ink_rows[-1] - ink_rows[0] < 22 and ink_cols[-1] - ink_cols[0] < 22
        assert np.median(np.concatenate([prepared[0], prepared[-1], prepared[:, 0], prepared[:, -1]])) == 0


def test_aspect_ratio_is_kept_and_the_longer_side_becomes_20_pixels() -> None:
    bar = np.zeros((200, 300), dtype=np.uint8)
    bar[50:150, 100:140] = 255  # a 100 x 40 stroke, dark background
    prepared = to_mnist_style(bar)
    ink = prepared > 127
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20
    assert cols[-1] - cols[0] + 1 == 8


def test_light_ink_on_a_mid_grey_card_is_not_inverted() -> None:
    card = np.full((60, 80), 150, dtype=np.uint8)
    card[10:40, 20:26] = 230  # lighter than the card
    prepared = to_mnist_style(card)
    assert prepared.max() == 255 and prepared[0, 0] == 0
    assert prepared[14, 14] > 200  # the stroke, not the card, is the ink


@pytest.mark.parametrize(
    "image",
    [np.full((50, 50), 255, dtype=np.uint8), np.full((28, 28), 0, dtype=np.uint8), np.zeros((0, 0), np.uint8)],
    ids=["white page", "black page", "no pixels"],
)
def test_an_image_without_ink_is_refused(image: np.ndarray) -> None:
    with pytest.raises(EmptyImageError, match="expected"):
        to_mnist_style(image)


def test_batch_keeps_mnist_style_rows_and_reports_blank_ones(digits: np.ndarray) -> None:
    batch = np.stack([digits[0], np.zeros((28, 28), np.uint8), 255 - digits[1]])
    prepared, problems = to_mnist_style_batch(batch)
    assert list(problems) == [1]
    assert np.array_equal(prepared[0], digits[0])
    assert np.array_equal(prepared[2], digits[1])


def test_a_batch_of_another_size_is_prepared_row_by_row(digits: np.ndarray) -> None:
    upscaled = np.kron(np.stack([digits[2], np.zeros((28, 28), np.uint8)]), np.ones((2, 2), np.uint8))
    prepared, problems = to_mnist_style_batch(upscaled)
    assert prepared.shape == (2, 28, 28) and list(problems) == [1]
    assert correlation(prepared[0], digits[2]) > 0.9


def test_exif_rotation_is_applied(tmp_path: Path, digits: np.ndarray) -> None:
    upright = Image.fromarray(255 - digits[7])
    rotated = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    rotated.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    prepared = to_mnist_style(read_image(tmp_path / "photo.jpg"))
    assert correlation(prepared, digits[7]) > 0.8
