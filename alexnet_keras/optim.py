"""Keras's SGD with its update compiled as one XLA computation on the TensorFlow backend.

``keras.optimizers.SGD`` updates every variable with separate TensorFlow ops: the decoupled weight
decay ``w -= w * wd * lr``, then ``m = m * momentum - g * lr`` and ``w += m``. Each op is one more
pass over the variable through memory, and the ``cifar`` network's 25.7M parameters made the update
43% of a training step's op time (TensorFlow's profiler, one thread). :class:`SGD` runs the same
``apply``, Keras's own code, inside ``tf.function(jit_compile=True)``: XLA fuses the ops into one
pass (fc2's 4096x4096 kernel: 58 ms -> 19 ms a step, torch's ``DecoupledSGD`` 27 ms). The numbers
are Keras's formula in float32; XLA may contract a multiply and an add into one fused
multiply-add, so a step can differ from the plain ops in the last bit (2e-7 after three steps on
weights of order 1).

Elsewhere the plain ops run: on other backends (JAX compiles the whole step already), eagerly
(``run_eagerly``), and under a ``tf.distribute`` strategy (its cross-replica updates stay Keras's).
The class keeps the name ``SGD``, so its variables have Keras's paths and checkpoints written
with ``keras.optimizers.SGD`` resume with it.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="alexnet_keras")
class SGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD``, its ``apply`` compiled by XLA inside a TensorFlow graph."""

    def apply(self, grads, trainable_variables=None):
        if not _fused_update_possible():
            return super().apply(grads, trainable_variables)
        import tensorflow as tf

        if not self.built and trainable_variables is not None:
            self.build(trainable_variables)  # variables are made outside the compiled function
        apply = super().apply
        return tf.function(lambda: apply(grads, trainable_variables), jit_compile=True, autograph=False)()


def _fused_update_possible() -> bool:
    """Inside a TensorFlow graph (``fit``'s train function), with no ``tf.distribute`` strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.inside_function() and not tf.distribute.has_strategy()


__all__ = ["SGD"]
