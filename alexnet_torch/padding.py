"""TensorFlow's SAME padding in PyTorch, for any input size and stride (the manner of timm's
``layers/padding.py``).

SAME makes the output ``ceil(size / stride)`` and pads what that needs, the odd pixel at the
bottom/right. PyTorch's own ``padding="same"`` refuses stride > 1, and its symmetric integer padding
cannot put more on one side, so at stride 4 (the cifar conv1) the two frameworks silently differ by
a pixel unless the padding is computed from the input, as here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:same]
def same_padding(size: int, kernel: int, stride: int,
                 dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis under TensorFlow's SAME rule."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1), value: float = 0.0
) -> torch.Tensor:
    """``x`` (N, C, H, W) padded as TensorFlow pads it for a SAME window of these sizes."""
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


# torch.fx records pad_same as one call (it reads the input's size, which a Proxy
# cannot give); torch.jit.script compiles it from the annotations; trace and export
# run it on concrete sizes.
torch.fx.wrap("pad_same")


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's SAME padding (zeros), computed from each input's size.

    The padding lives inside this module (not a separate ``ZeroPad2d``) so the module sequence is
    the Keras layer sequence one for one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 dilation=1, groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0,
                         dilation, groups, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(
            pad_same(x, self.kernel_size, self.stride, self.dilation),
            self.weight, self.bias)
# --8<-- [end:same]


class MaxPool2dSame(nn.MaxPool2d):
    """``nn.MaxPool2d`` with TensorFlow's SAME padding: padded cells are -inf, so never the max."""

    def __init__(self, kernel_size, stride=None, dilation=1):
        super().__init__(kernel_size, stride, 0, dilation)
        pair = nn.modules.utils._pair
        self._kernel: tuple[int, int] = pair(self.kernel_size)
        self._stride: tuple[int, int] = pair(self.stride)
        self._dilation: tuple[int, int] = pair(self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self._kernel, self._stride, self._dilation, value=-math.inf)
        return F.max_pool2d(x, self._kernel, self._stride, 0, self._dilation)
