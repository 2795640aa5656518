"""The ways a user runs a model, each a function ``prepare(model, x_nchw) -> call`` that does the
one-time work (layout conversion, tracing) outside the timed call.

``default=True`` marks the path each framework's users take without thinking: torch ``model(x)``
under ``inference_mode`` with an ordinary NCHW tensor, Keras ``model.predict(x)``, on the literal
models. The ``optimize()`` rows are the opt-in fast paths, ``alexnet_torch.optimize`` and
``alexnet_keras.optimize``, called the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Mode:
    framework: str  # "torch" or "keras": which model the mode runs
    name: str
    default: bool
    prepare: Callable


def _torch_eager(model, x_nchw):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(x_nchw))

    def call():
        with torch.inference_mode():
            return model(x)

    return call


def _torch_channels_last(model, x_nchw):
    import torch

    model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.from_numpy(np.ascontiguousarray(x_nchw)).contiguous(memory_format=torch.channels_last)

    def call():
        with torch.inference_mode():
            return model(x)

    return call


def _torch_optimized(model, x_nchw):
    import alexnet_torch

    return _torch_eager(alexnet_torch.optimize(copy.deepcopy(model)), x_nchw)


def _keras_predict(model, x_nchw):
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    return lambda: model.predict(x, batch_size=len(x), verbose=0)


def _keras_jit_call(model, x_nchw):
    import keras

    x = keras.ops.convert_to_tensor(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda t: model(t, training=False), jit_compile=True)
    elif keras.backend.backend() == "jax":
        import jax

        fn = jax.jit(lambda t: model(t, training=False))
    else:
        raise RuntimeError(f"no jit-compiled call for Keras backend {keras.backend.backend()!r}")
    return lambda: keras.ops.convert_to_numpy(fn(x))


def _keras_optimized_predict(model, x_nchw):
    """``alexnet_keras.optimize`` returns a new model (the literal one is left as it is)."""
    import alexnet_keras

    return _keras_predict(alexnet_keras.optimize(model), x_nchw)


# The ways to call torchvision.models.alexnet, the outside baseline.
BASELINE_MODES = (
    Mode("torch", "eager NCHW", True, _torch_eager),
    Mode("torch", "channels_last", False, _torch_channels_last),
)
TORCH_MODES = (*BASELINE_MODES, Mode("torch", "optimize()", False, _torch_optimized))
KERAS_MODES = (
    Mode("keras", "predict", True, _keras_predict),
    Mode("keras", "jit call", False, _keras_jit_call),
    Mode("keras", "optimize() predict", False, _keras_optimized_predict),
)
