"""The functional model class every variant returns: Keras's own ``keras.Model``, carrying the
variant's name and build options in its config (so a ``.keras`` file knows what it is), with input
checks that say what to do. Nothing here changes how Keras compiles, fits or predicts; the opt-in
fast path is ``alexnet_keras.optimize(model)``."""

from __future__ import annotations

import keras
import numpy as np

from alexnet_spec import get_spec


@keras.saving.register_keras_serializable(package="alexnet_keras")
class AlexNetModel(keras.Model):
    def __init__(self, *args, variant: str | None = None, options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.variant = variant
        self.options = dict(options or {})

    def __call__(self, inputs, *args, **kwargs):
        # no walrus here: TensorFlow's AutoGraph cannot convert one, and warns on every trace
        check_input(inputs, self.variant, tuple(self.inputs[0].shape))
        empty = self._empty_output() if _is_empty_batch(inputs) else None
        if empty is not None:
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

    def predict(self, x, *args, **kwargs):
        """Keras's ``predict``, after the input check (Keras would trace a wrong shape and fail
        deep inside), and with an empty batch answered as ``(0, classes)``."""
        check_input(x, self.variant, tuple(self.inputs[0].shape))  # JAX's predict skips __call__
        empty = self._empty_output() if _is_empty_batch(x) else None
        if empty is not None:
            return empty
        return super().predict(x, *args, **kwargs)


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
