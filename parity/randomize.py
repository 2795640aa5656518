"""Seeded randomization of every parameter and buffer, so that no convention can hide.

A fresh model hides bugs: BatchNorm statistics at 0/1 make a wrong epsilon or variance convention
invisible, and small activations make LocalResponseNorm almost the identity (so a wrong alpha
passes). Here weights are He-scaled times ``gain``, biases and BatchNorm statistics are random.
"""

from __future__ import annotations

import math

import numpy as np


def randomize_torch(module, seed: int = 0, *, gain: float = 1.0):
    """Overwrite every floating parameter and buffer of ``module`` in place; returns it."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    with torch.no_grad():
        for name, tensor in module.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                value = 0.5 + torch.rand(tensor.shape, generator=g, dtype=torch.float64)
            elif leaf == "weight" and tensor.ndim == 1:  # BatchNorm gamma
                value = 0.5 + torch.rand(tensor.shape, generator=g, dtype=torch.float64)
            elif leaf == "weight":
                fan_in = tensor[0].numel()
                value = normal(tensor.shape, gain * math.sqrt(2.0 / fan_in))
            else:  # biases, BatchNorm beta and running_mean
                value = normal(tensor.shape, 0.1)
            tensor.copy_(value.to(tensor.dtype))
    return module


def random_batch(shape, seed: int = 0, *, scale: float = 1.0) -> np.ndarray:
    """A float32 NCHW batch, N(0, scale^2), the same on every machine."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
