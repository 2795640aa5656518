"""SGD with Keras's decoupled weight decay, as a ``torch.optim.SGD``.

Keras's ``SGD(weight_decay=wd)`` shrinks every variable by ``lr * wd`` of itself before the gradient
step, outside the momentum: ``w -= lr * wd * w``, then ``v = momentum * v - lr * g; w += v``.
``torch.optim.SGD(weight_decay=wd)`` instead adds ``wd * w`` to the gradient, which then runs
through the momentum buffer (coupled). The first step is the same either way (zero velocity); from
the second on they differ (1.2e-2 of a step's change on ``cifar``: ``parity.steps``).

:class:`DecoupledSGD` is the one place PyTorch training here applies weight decay. This module
never imports tensorflow or keras.
"""

from __future__ import annotations

import torch


# --8<-- [start:decoupled-sgd]
class DecoupledSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose ``weight_decay`` is Keras's, decoupled: before each step every
    parameter that has a gradient shrinks, ``p -= lr * weight_decay * p``; SGD's own (coupled)
    ``weight_decay`` stays 0. The decay is the optimizer's, one number for every group, as in Keras."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, *, weight_decay: float = 0.0, **kwargs):
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be 0 or more; found {weight_decay}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=0.0, **kwargs)
        coupled = [i for i, group in enumerate(self.param_groups) if group["weight_decay"]]
        if coupled:
            raise ValueError(f"parameter group {coupled[0]} asks for SGD's coupled weight_decay; DecoupledSGD's "
                             "decay is decoupled and the optimizer's own: pass weight_decay=... to DecoupledSGD")
        self.decoupled_weight_decay = weight_decay
        self.register_step_pre_hook(_decay)  # inside step's hook wrapper: runs once per step


@torch.no_grad()
def _decay(optimizer: DecoupledSGD, args, kwargs) -> None:
    if optimizer.decoupled_weight_decay:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p, alpha=-group["lr"] * optimizer.decoupled_weight_decay)
# --8<-- [end:decoupled-sgd]


__all__ = ["DecoupledSGD"]
