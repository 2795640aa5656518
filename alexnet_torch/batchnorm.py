"""BatchNorm that trains exactly like Keras's ``BatchNormalization``.

Normalization is the same in both frameworks (batch statistics in training, with the biased
variance; moving statistics in inference). They differ in the moving-statistics update: PyTorch
folds the *unbiased* batch variance into ``running_var``, Keras the *biased* one. Over a batch of n
that is a factor n / (n - 1): with batch 8 the running variance drifts 14% further per update.
These modules carry Keras's convention so a network trained in either framework is the same
network; momentum is PyTorch's (the weight of the new batch: Keras's 0.99 is 0.01 here) and comes
from the variant's spec. ``state_dict`` keys are the standard ones (weight, bias, running_mean,
running_var, num_batches_tracked), so checkpoints load into plain ``nn.BatchNorm`` and back.

Frozen, they behave as Keras's ``BatchNormalization`` with ``trainable = False`` does: a layer
whose weight takes no gradient (``requires_grad_(False)``, ``alexnet_torch.training.freeze``)
stays in inference mode through ``model.train()``, normalizing with its moving statistics and
never updating them. (A plain ``nn.BatchNorm`` would go on updating them in training mode.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:biased]
class _BiasedRunningVariance:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No super().forward, no _check_input_dim: torch.jit.script and torch.fx take
        # it as it is.
        mean, var, count, momentum = (self.running_mean, self.running_var,
                                      self.num_batches_tracked, self.momentum)
        # PyTorch's own formula
        if not self.training or mean is None or var is None or count is None:
            return F.batch_norm(x, mean, var, self.weight, self.bias,
                                self.training or mean is None, 0.0, self.eps)
        axes = [0] + list(range(2, x.dim()))
        with torch.no_grad():
            count.add_(1)
            m = momentum if momentum is not None else 1.0 / float(count)
            # statistics in the buffers' dtype (float32 under autocast too)
            xs = x.to(mean.dtype)
            mean.lerp_(xs.mean(axes), m)  # (1 - m) * running + m * batch
            var.lerp_(xs.var(axes, unbiased=False), m)  # biased, as Keras
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0,
                            self.eps)
# --8<-- [end:biased]

    def train(self, mode: bool = True):
        """Frozen (weight without gradient), the layer stays in inference mode, as Keras's."""
        return super().train(mode and not frozen(self))


def frozen(module: nn.Module) -> bool:
    """Whether a BatchNorm is frozen: its weight takes no gradient."""
    weight = getattr(module, "weight", None)
    return weight is not None and not weight.requires_grad


class BatchNorm1dKeras(_BiasedRunningVariance, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training updates ``running_var`` with the biased batch variance."""


class BatchNorm2dKeras(_BiasedRunningVariance, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training updates ``running_var`` with the biased batch variance."""
