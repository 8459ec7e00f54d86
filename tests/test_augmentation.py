"""Training-time augmentation: seeded, bounded, and absent from the saved model; the weight of increment rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import tensorflow as tf

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.modeling.augmentation import MAX_INCREMENT_COPIES, augment_images, weigh_increments
from mnist_pipeline.modeling.profiles import TrainConfig
from mnist_pipeline.modeling.training import train_model
from tests.synthetic_digits import make_split


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(images.shape[1:])
    mass = images.sum(axis=(1, 2)).astype(float)
    return np.stack([(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], axis=1)


def test_no_shift_and_no_rotation_leave_images_unchanged() -> None:
    images = make_split(16).images
    out = augment_images(tf.constant(images), 0.0, 0.0, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(out, images)


def test_same_seed_same_images_other_seed_other_images() -> None:
    images = tf.constant(make_split(16).images)
    first = augment_images(images, 2.0, 10.0, tf.constant([7, 3])).numpy()
    np.testing.assert_array_equal(first, augment_images(images, 2.0, 10.0, tf.constant([7, 3])).numpy())
    assert not np.array_equal(first, augment_images(images, 2.0, 10.0, tf.constant([7, 4])).numpy())
    assert first.dtype == np.uint8 and first.shape == images.shape


def test_shifts_stay_within_the_bound() -> None:
    images = make_split(64).images
    moved = augment_images(tf.constant(images), 2.0, 0.0, tf.constant([5, 0])).numpy()
    offsets = np.abs(centre_of_mass(moved) - centre_of_mass(images))
    assert offsets.max() <= 2.0 + 0.5  # bilinear sampling and rounding blur the mass by a fraction of a pixel
    assert offsets.mean() > 0.3


def test_augmented_training_is_repeatable_and_the_model_has_no_augmentation() -> None:
    config = replace(TrainConfig(profile="test", epochs=1, batch_size=64), augment_shift=2.0, augment_rotation=10.0)
    data = make_split(400)
    first = train_model("ann_hidden_100", config, data, seed=3).model
    second = train_model("ann_hidden_100", config, data, seed=3).model
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = train_model("ann_hidden_100", replace(config, augment_shift=0.0, augment_rotation=0.0), data, seed=3)
    assert [type(layer) for layer in first.layers] == [type(layer) for layer in plain.model.layers]
    assert not np.array_equal(first.get_weights()[0], plain.model.get_weights()[0])


def test_increment_rows_are_repeated_to_their_share_moved_and_labelled_as_themselves() -> None:
    base, new = make_split(950), make_split(50, seed=3)
    split = Split(np.concatenate([base.images, new.images]), np.concatenate([base.labels, new.labels]))
    is_new = np.arange(1000) >= 950
    weighed = weigh_increments(split, is_new, share=0.2, seed=1)
    copies = round(0.2 / 0.8 * 950 / 50)  # 5: the 50 rows, then 4 moved copies of them
    assert weighed.rows == 1000 + (copies - 1) * 50
    np.testing.assert_array_equal(weighed.images[:1000], split.images)
    extra = weighed.images[1000:].reshape(copies - 1, 50, 28, 28)
    assert all(not np.array_equal(copy, new.images) for copy in extra)
    np.testing.assert_array_equal(weighed.labels[1000:], np.tile(new.labels, copies - 1))
    share = (weighed.rows - 950) / weighed.rows
    assert abs(share - 0.2) < 0.02
    np.testing.assert_array_equal(weigh_increments(split, is_new, 0.2, seed=1).images, weighed.images)
    assert not np.array_equal(weigh_increments(split, is_new, 0.2, seed=2).images, weighed.images)


def test_increment_rows_get_no_copies_without_a_share_or_once_they_have_it_and_few_rows_are_capped() -> None:
    split = make_split(200)
    half = np.arange(200) >= 100
    assert weigh_increments(split, half, share=0.0, seed=1) is split
    assert weigh_increments(split, half, share=0.3, seed=1) is split
    assert weigh_increments(split, np.zeros(200, dtype=bool), share=0.3, seed=1) is split
    one = np.arange(200) == 199
    assert weigh_increments(split, one, share=0.3, seed=1).rows == 200 + MAX_INCREMENT_COPIES - 1
