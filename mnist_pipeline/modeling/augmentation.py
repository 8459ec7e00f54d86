"""Training-time augmentation: small random rotations and shifts, seeded per batch.

Each batch's transforms come from a stateless RNG keyed on (seed, epoch, step), so the same seed gives the same
augmented images in any thread or process, and a resumed run sees exactly what an uninterrupted one saw. It runs
inside the input pipeline, so saved models contain no augmentation and inference sees images as they are.
"""

from __future__ import annotations

import math

import tensorflow as tf


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
