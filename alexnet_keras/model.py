"""The functional model class every variant returns: Keras's own, plus input checks that say
what to do, and the variant's name kept in its config so a ``.keras`` file knows what it is."""

from __future__ import annotations

import math

import keras
import numpy as np

from alexnet_spec import get_spec


@keras.saving.register_keras_serializable(package="alexnet_keras")
class AlexNetModel(keras.Model):
    def __init__(self, *args, variant: str | None = None, options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.variant = variant
        self.options = dict(options or {})
        if _jit_by_default(variant):
            self.jit_compile = True

    def compile(self, *args, jit_compile="auto", **kwargs):
        if jit_compile == "auto" and _jit_by_default(self.variant):
            jit_compile = True
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        check_input(inputs, self.variant, tuple(self.inputs[0].shape))
        if _is_empty_batch(inputs) and (empty := self._empty_output()) is not None:
            return keras.ops.convert_to_tensor(empty)
        return super().__call__(inputs, *args, **kwargs)

    def _empty_output(self) -> np.ndarray | None:
        """The output for a batch of no images, as PyTorch gives it: Keras's layers fail on one
        (a Flatten of zero rows cannot infer its width). None where the shape is unknown."""
        shape = tuple(self.outputs[0].shape[1:])
        if len(self.outputs) != 1 or any(d is None for d in shape):
            return None
        return np.zeros((0, *shape), dtype=keras.backend.standardize_dtype(self.outputs[0].dtype))

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "options": self.options}

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Keras's ``predict``, with batches sliced straight from an in-memory array.

        On TensorFlow, Keras builds a dataset pipeline for every call, tracing its functions
        anew: about 0.1-0.2 s per call on 2 cores, more than this network takes for a batch of one
        (docs/benchmarks.md). For one NumPy array or tensor, with one step per execution and one
        replica, the same compiled ``predict_function``, callbacks and progress bar are driven from
        slices of ``x``; anything else goes to Keras's own ``predict``.
        """
        # before tracing relaxes the shape; and JAX's predict runs the layers without __call__
        check_input(x, self.variant, tuple(self.inputs[0].shape))
        if _is_empty_batch(x) and (empty := self._empty_output()) is not None:
            return empty
        if not self._predicts_from_slices(x, batch_size, steps):
            return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        batch_size = 32 if batch_size is None else batch_size
        num_batches = math.ceil(len(x) / batch_size)
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = keras.callbacks.CallbackList(
                callbacks, add_progbar=verbose != 0, verbose=verbose, epochs=1, steps=num_batches, model=self
            )
        self.make_predict_function()
        self.stop_predicting = False
        callbacks.on_predict_begin()
        outputs = []
        for step in range(num_batches):
            callbacks.on_predict_batch_begin(step)
            batch_outputs = self.predict_function([(x[step * batch_size:(step + 1) * batch_size],)])
            outputs.append(keras.ops.convert_to_numpy(batch_outputs))
            callbacks.on_predict_batch_end(step, {"outputs": batch_outputs})
            if self.stop_predicting:
                break
        callbacks.on_predict_end()
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _predicts_from_slices(self, x, batch_size, steps) -> bool:
        """One dense array or tensor (sparse ones cannot be sliced), a batch size Keras would take."""
        return (
            keras.backend.backend() == "tensorflow"
            and (isinstance(x, np.ndarray) or (keras.ops.is_tensor(x) and hasattr(x, "__getitem__")))
            and len(x.shape) > 0 and bool(x.shape[0])
            and (batch_size is None or (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool) and batch_size > 0))
            and steps is None
            and len(self.outputs) == 1
            and self.steps_per_execution == 1
            and getattr(self.distribute_strategy, "num_replicas_in_sync", 1) == 1
        )


# Variants that predict faster through XLA on CPU, measured at batch 32 (a TensorFlow function with and
# without jit_compile, alternated; docs/benchmarks.md): paper 553 vs 781 ms (XLA fuses the LRN).
# Not cifar (402 vs 44 ms: XLA's CPU convolutions on 4x4 and 2x2 maps are slow) nor torchvision
# (437 vs 390 ms at batch 32, though 34 vs 45 ms at batch 1).
XLA_VARIANTS = frozenset({"paper"})


def _jit_by_default(variant: str | None) -> bool:
    """XLA for ``predict``/``fit`` on the TensorFlow backend, CPU included, where it is faster.

    Keras's ``jit_compile="auto"`` turns XLA off on machines without a GPU; for the variants in
    ``XLA_VARIANTS`` it is turned on. JAX always compiles; the torch backend's jit would mean
    ``torch.compile``, which is left to the user.
    """
    return variant in XLA_VARIANTS and keras.backend.backend() == "tensorflow"


def _is_empty_batch(x) -> bool:
    shape = getattr(x, "shape", None)
    return shape is not None and len(shape) > 0 and shape[0] == 0


def check_input(x, variant: str | None, expected: tuple) -> None:
    """``expected`` is the model's input shape, (None, H, W, C) with H, W None when any size goes."""
    shape = getattr(x, "shape", None)
    if shape is None or variant is None:
        return
    shape = tuple(shape)
    spec = get_spec(variant)
    channels = expected[-1]
    if len(shape) != 4:
        hint = " Add the batch axis with x[None]." if len(shape) == 3 else ""
        raise ValueError(
            f"AlexNet {variant!r} expects an NHWC batch of shape (N, H, W, {channels}); found a "
            f"{len(shape)}-D input of shape {shape}.{hint}"
        )
    if shape[-1] is not None and shape[-1] != channels:  # None: unknown while tracing
        if shape[1] == channels:
            raise ValueError(
                f"AlexNet {variant!r} in Keras expects NHWC input (N, H, W, {channels}); found shape "
                f"{shape}, which looks like NCHW (channels first, PyTorch's layout). Pass "
                f"np.transpose(x, (0, 2, 3, 1)) or keras.ops.transpose(x, (0, 2, 3, 1))."
            )
        raise ValueError(
            f"AlexNet {variant!r} expects {channels} input channels (RGB) on the last axis; found "
            f"{shape[-1]} in shape {shape}. Convert grayscale or RGBA images to RGB first."
        )
    h, w = expected[1:3]
    if h is not None and any(found is not None and found != size for found, size in zip(shape[1:3], (h, w))):
        raise ValueError(
            f"AlexNet {variant!r} expects {h}x{w} inputs; found {shape[1]}x{shape[2]}. {spec.size_hint}"
        )
    minimum = spec.min_input_size
    if h is None and minimum and None not in shape[1:3] and min(shape[1:3]) < minimum:
        raise ValueError(
            f"AlexNet {variant!r} needs inputs of at least {minimum}x{minimum}; found "
            f"{shape[1]}x{shape[2]}. {spec.size_hint}"
        )
