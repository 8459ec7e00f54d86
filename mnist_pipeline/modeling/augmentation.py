"""Training-time augmentation: small random rotations and shifts, and the weight of accepted increments.

Transforms come from a stateless RNG keyed on the seed (and, per batch, the epoch and step), so the same seed gives
the same augmented images in any thread or process, and a resumed run sees exactly what an uninterrupted one saw.
It happens before the model, so saved models contain no augmentation and inference sees images as they are.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from mnist_pipeline.data.dataset import Split

# How far the extra copies of increment rows are moved, and how many copies an image gets at most (so a handful of
# labels is not repeated thousands of times). Why these: bench/RESULTS.md, "Learning from a few hundred labels".
INCREMENT_SHIFT, INCREMENT_ROTATION, MAX_INCREMENT_COPIES = 2.0, 10.0, 16


def augment_images(images: tf.Tensor, max_shift: float, max_rotation: float, seed: tf.Tensor) -> tf.Tensor:
    """Rotate each uint8 image (n, h, w) by up to ±max_rotation degrees about its centre, then shift it by up to
    ±max_shift pixels per axis; bilinear, zero fill (MNIST's background), rounded back to uint8."""
    shape = tf.shape(images)
    n, height, width = shape[0], shape[1], shape[2]
    seed = tf.cast(seed, tf.int64)
    angles = tf.random.stateless_uniform([n], seed, -max_rotation, max_rotation) * (math.pi / 180)
    shifts = tf.random.stateless_uniform([n, 2], seed + tf.constant([0, 1], tf.int64), -max_shift, max_shift)
    cos, sin = tf.cos(angles), tf.sin(angles)
    cx, cy = (tf.cast(width, tf.float32) - 1) / 2, (tf.cast(height, tf.float32) - 1) / 2
    # Each row maps an output pixel (x, y) to the input point it samples: the inverse rotation and shift.
    zeros = tf.zeros([n])
    transforms = tf.stack(
        [
            cos,
            -sin,
            cx - cos * cx + sin * cy - shifts[:, 0],
            sin,
            cos,
            cy - sin * cx - cos * cy - shifts[:, 1],
            zeros,
            zeros,
        ],
        axis=1,
    )
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32)[..., None],
        transforms=transforms,
        output_shape=tf.stack([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return tf.cast(tf.clip_by_value(tf.round(moved[..., 0]), 0, 255), tf.uint8)


def weigh_increments(split: Split, is_new: np.ndarray, share: float, seed: int) -> Split:
    """`split` with its accepted increments' rows (`is_new`) repeated until they are about `share` of the rows,
    at most MAX_INCREMENT_COPIES times: the rows themselves, then copies rotated and shifted at random (seeded), so
    a few hundred labels count against 60 000 MNIST images without being learnt by heart. Rows that already make
    up `share` get no copies."""
    n_new = int(is_new.sum())
    if share == 0.0 or n_new == 0:
        return split
    copies = min(MAX_INCREMENT_COPIES, round(share / (1 - share) * (split.rows - n_new) / n_new))
    if copies < 2:
        return split
    new = tf.constant(split.images[is_new])
    moved = [
        augment_images(new, INCREMENT_SHIFT, INCREMENT_ROTATION, tf.constant([seed, copy], tf.int64)).numpy()
        for copy in range(1, copies)
    ]
    return Split(
        images=np.concatenate([split.images, *moved]),
        labels=np.concatenate([split.labels, np.tile(split.labels[is_new], copies - 1)]),
    )
