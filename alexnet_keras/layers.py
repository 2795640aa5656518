"""Layers Keras 3 lacks, written with ``keras.ops`` only so they run on every backend."""

from __future__ import annotations

import keras
from keras import ops



@keras.saving.register_keras_serializable(package="alexnet_keras")
class LocalResponseNormalization(keras.layers.Layer):
    """PyTorch's ``nn.LocalResponseNorm``, exactly, for channels-last tensors.

    ``b_c = a_c / (k + alpha / size * sum(a_j^2 for j in window(c))) ** beta``, the window spanning
    ``size // 2`` channels before ``c`` and ``(size - 1) // 2`` after, zero-padded at the ends.
    Note: alpha is divided by ``size`` (PyTorch and Caffe); TensorFlow's
    ``local_response_normalization`` does not divide, and takes the half-width as ``depth_radius``.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if size < 1:
            raise ValueError(f"size must be a positive window width; found {size}")
        self.size, self.alpha, self.beta, self.k, self.axis = int(size), float(alpha), float(beta), float(k), int(axis)

    # --8<-- [start:lrn]
    def call(self, x):
        axis = self.axis % len(x.shape)
        channels = x.shape[axis]
        squared = ops.square(x)
        pad = [(0, 0)] * len(x.shape)
        pad[axis] = (self.size // 2, (self.size - 1) // 2)
        padded = ops.pad(squared, pad)
        window = None
        for offset in range(self.size):
            index = [slice(None)] * len(x.shape)
            index[axis] = slice(offset, offset + channels)
            part = padded[tuple(index)]
            window = part if window is None else window + part
        return x / _power(self.k + (self.alpha / self.size) * window, self.beta)
    # --8<-- [end:lrn]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k, "axis": self.axis}


def _power(d, beta: float):
    """``d ** beta``; AlexNet's 0.75 as ``sqrt(d) * sqrt(sqrt(d))``, which XLA vectorizes where
    it does not vectorize ``pow`` (conv1's LRN at batch 32: 59 ms against 105)."""
    if beta == 0.75:
        root = ops.sqrt(d)
        return root * ops.sqrt(root)
    if beta == 0.5:
        return ops.sqrt(d)
    return ops.power(d, beta)
