"""``alexnet_torch.optimize(model)``: the opt-in fast path for CPU inference.

The literal models are plain PyTorch, the path every tool of PyTorch's takes. ``optimize`` trades
that for speed on CPU, keeping the weights, the ``state_dict`` keys and the numbers (up to fp32
rounding): what each change gains is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_torch.layers import Linear, LocalResponseNorm, channels_last_on_cpu


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    return (channels_last_on_cpu(args[0]), *args[1:])


# --8<-- [start:optimize]
def optimize(model: nn.Module) -> nn.Module:
    """Make ``model`` (any AlexNet of this package) faster for CPU inference, in place, and return it.

    - ``nn.LocalResponseNorm`` -> ``alexnet_torch.layers.LocalResponseNorm``: blocked over pixels in
      cache, in place after an in-place ReLU;
    - ``nn.Linear`` -> ``alexnet_torch.layers.Linear``: ``(W @ x.T).T``, the same parameters;
    - weights in channels_last memory, and a forward pre-hook that converts an NCHW CPU input to it.

    The parameters are the same objects and the ``state_dict`` keys do not change, so checkpoints
    load before or after. ``torch.jit.trace``, ``torch.export``, ``torch.compile``, ``torch.fx`` and
    both ONNX exporters take the result and record PyTorch's own ops (the literal model's graph);
    ``torch.jit.script`` refuses it with a message: script the model as built.
    """
    for parent in list(model.modules()):
        previous = None
        for name, child in list(parent.named_children()):
            if type(child) is nn.LocalResponseNorm:
                inplace = isinstance(previous, nn.ReLU) and previous.inplace  # its input is ours to overwrite
                setattr(parent, name, LocalResponseNorm(child.size, child.alpha, child.beta, child.k, inplace=inplace))
            elif type(child) is nn.Linear:
                setattr(parent, name, Linear.replacing(child))
            previous = child
    model.to(memory_format=torch.channels_last)
    if not getattr(model, "_channels_last_input", False):
        model.register_forward_pre_hook(_channels_last_input)
        model._channels_last_input = True
    return model
# --8<-- [end:optimize]
