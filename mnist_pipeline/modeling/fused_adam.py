"""Adam whose update is TensorFlow's one fused kernel per variable instead of Keras' ~10 elementwise ops.

Why: Keras' Adam updates each variable with separate TF ops (subtract, multiply, square, sqrt, divide, assigns),
each a full pass over the variable; for the CNN's 540 000-weight hidden kernel that was ~20 % of a bfloat16
training step's CPU time (TF profiler, bench/RESULTS.md). `ResourceApplyAdam` computes the same formula in one
pass. Results differ from Keras' Adam by float rounding only (about an ulp per step) and are deterministic.

Training only: the model that is saved gets a plain Keras Adam holding the same state (`copy_state`), so loading
a saved model needs nothing from this package.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _handle(variable: keras.Variable | tf.Variable) -> tf.Tensor:
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam with float32 dense updates done by `tf.raw_ops.ResourceApplyAdam`."""

    def update_step(self, gradient: tf.Tensor, variable: tf.Variable, learning_rate: tf.Tensor) -> None:
        if self.amsgrad or variable.dtype != tf.float32 or isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
        )


def copy_state(source: keras.optimizers.Optimizer, target: keras.optimizers.Optimizer, variables: list) -> None:
    """Give `target` (built for `variables` if it is not yet) the step count and slots of `source`."""
    if not target.built:
        target.build(variables)
    for into, value in zip(target.variables, source.variables, strict=True):
        into.assign(value)
