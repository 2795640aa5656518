"""Faster modules with the exact semantics of PyTorch's own, and the CPU layout helper.

Each is a drop-in: same constructor arguments, same ``repr``, no parameters or buffers of its own,
so a model using them keeps the document's ``state_dict`` keys and loads its checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


class LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` (same arguments, same result up to fp32 rounding), faster on CPU
    for 4-D inputs.

    PyTorch's version pads a 5-D copy of ``x**2``, runs ``avg_pool3d`` over it and then makes four
    more passes over memory. Here the sum of squares over each channel window (``size // 2``
    channels before, ``(size - 1) // 2`` after, zero-padded) is either one matrix product with a
    banded 0/1 matrix, fused with ``k + alpha / size * sum`` by ``addmm`` (channels_last input with
    few channels: the channels are then the contiguous axis), or ``size - 1`` shifted in-place adds
    (many channels, where the product's ``channels`` multiply-adds per element cost more than the
    adds; or NCHW input). Temporaries are reused in place when autograd does not need them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.numel() == 0:
            return super().forward(x)
        n, c, h, w = x.shape
        inplace = not (torch.is_grad_enabled() and x.requires_grad)
        scale = self.alpha / self.size
        if c <= MATMUL_MAX_CHANNELS and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: pixels x channels
            band = _band(c, self.size, x.dtype, x.device)
            denom = torch.addmm(_scalar(self.k, x), rows * rows, band, alpha=scale)
            return _divide(rows, denom, self.beta, inplace).view(n, h, w, c).permute(0, 3, 1, 2)
        squares = x * x
        total = squares.clone()
        for offset in range(1, min(self.size // 2, c - 1) + 1):  # channel c - offset
            total[:, offset:] += squares[:, :-offset]
        for offset in range(1, min((self.size - 1) // 2, c - 1) + 1):  # channel c + offset
            total[:, :-offset] += squares[:, offset:]
        denom = total.mul_(scale).add_(self.k)
        return _divide(x, denom, self.beta, inplace)


# Above this many channels the banded product costs more than shifted adds (benchmarks/,
# measured on 2 cores: 96 channels favour the product, 256 the adds).
MATMUL_MAX_CHANNELS = 128


def _divide(x: torch.Tensor, denom: torch.Tensor, beta: float, inplace: bool) -> torch.Tensor:
    """``x / denom ** beta``, written into ``denom`` when autograd does not need it."""
    if inplace:
        return denom.pow_(-beta).mul_(x)
    return x * denom.pow(-beta)


def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


_BANDS: dict[tuple, torch.Tensor] = {}


def _band(channels: int, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``band[j, c] = 1`` when channel ``j`` lies in the LRN window of channel ``c`` (cached)."""
    key = (channels, size, dtype, device)
    band = _BANDS.get(key)
    if band is None:
        idx = torch.arange(channels, device=device)
        j, c = idx[:, None], idx[None, :]
        band = ((j >= c - size // 2) & (j <= c + (size - 1) // 2)).to(dtype)
        _BANDS[key] = band
    return band


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last memory when it is a 4-D CPU tensor, else ``x`` itself.

    oneDNN's CPU convolutions run faster on channels_last memory (torchvision's own AlexNet at batch
    32: 60.4 img/s NCHW, 71.4 channels_last, docs/benchmarks.md); the values and the NCHW shape a
    caller sees do not change.
    """
    if x.device.type == "cpu" and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


class ChannelsLastOnCPU:
    """Mixin for an ``nn.Module`` whose ``forward`` starts with ``x = self.fast_layout(x)``: keeps
    its 4-D weights in channels_last memory (set once by :meth:`use_channels_last`) and converts an
    ordinary NCHW input on CPU, so ``model(x)`` takes the fast path with no action by the user."""

    def use_channels_last(self) -> None:
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def fast_layout(x: torch.Tensor) -> torch.Tensor:
        return channels_last_on_cpu(x)
