"""Faster CPU modules with the exact semantics of PyTorch's own, used by ``alexnet_torch.optimize``.

Each is a drop-in for the PyTorch module it subclasses: same constructor arguments (plus an opt-in
``inplace`` for the LRN), same parameters (none for the LRN) and ``repr`` (unless ``inplace`` is
set), so a model using them keeps its ``state_dict`` keys. They are not in the literal models:
their Python-level fast paths are for eager CPU inference, and the models' default path stays
what ``torch.jit.script``, ``torch.fx`` and the ONNX exporters take as it is.
"""

from __future__ import annotations

import torch
from torch import nn


class LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` (same arguments, same result up to fp32 rounding), faster on CPU
    for 4-D inputs.

    PyTorch's version pads a 5-D copy of ``x**2``, runs ``avg_pool3d`` over it, makes four more
    whole-tensor passes and raises to ``-beta`` with a scalar ``pow``. At AlexNet's sizes those
    temporaries are the cost: conv1's map is 37 MB at batch 32, and each fresh buffer that large
    is new pages from the kernel. Here, without autograd, the work goes through blocks of pixels
    that stay in cache, with two small reused buffers: per block the squares, their sums over each
    channel window (``size // 2`` channels before, ``(size - 1) // 2`` after, zero-padded) by
    ``size - 1`` shifted adds, then ``x / (k + alpha / size * sum) ** beta``, with ``beta = 0.75``
    taken as two square roots and a product (vectorized, where ``pow`` is not).

    ``inplace=True`` (as in ``nn.ReLU``) writes the result into the input when autograd does not
    need it; AlexNet uses it after its in-place ReLU, so (as with that ReLU over the conv output)
    a forward hook that keeps the ReLU's output without copying it sees the normalized values.
    Off the CPU or under autograd the plain whole-tensor formula runs instead (a new tensor, one
    launch per op on a GPU). In a captured graph (see :func:`_captured`) PyTorch's own
    ``nn.LocalResponseNorm`` runs.
    """

    inplace = False  # also a class default: modules pickled before the option existed lack it

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, inplace: bool = False) -> None:
        super().__init__(size, alpha, beta, k)
        self.inplace = inplace

    def extra_repr(self) -> str:
        return super().extra_repr() + (", inplace=True" if self.inplace else "")

    def __prepare_scriptable__(self):  # torch.jit.script calls this first: a clear refusal
        _refuse_scripting(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _captured(x) or x.dim() != 4 or x.numel() == 0:
            return super().forward(x)
        if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
            return x * self._window_sum(x * x, dim=1).pow(-self.beta)
        if x.is_contiguous(memory_format=torch.channels_last):  # pixels x channels
            out = x if self.inplace else torch.empty_like(x)
            self._blocked(_pixel_rows(x), _pixel_rows(out), dim=1)
            return out
        y = x.contiguous()  # per image, channels x pixels
        out = y if self.inplace or y is not x else torch.empty_like(y)
        for image, result in zip(y.flatten(2), out.flatten(2)):
            self._blocked(image, result, dim=0)
        return x.copy_(out) if self.inplace and out is not x else out

    def _blocked(self, x: torch.Tensor, out: torch.Tensor, dim: int) -> None:
        """LRN of the 2-D ``x`` along ``dim`` (its channels) into ``out``, a block of pixels at a time."""
        c, pixels = x.shape[dim], x.shape[1 - dim]
        block = max(1, min(pixels, BLOCK_ELEMENTS // c))
        shape = (block, c) if dim == 1 else (c, block)
        squares, denom = x.new_empty(shape), x.new_empty(shape)
        for start in range(0, pixels, block):
            width = min(block, pixels - start)
            xs = x.narrow(1 - dim, start, width)
            sq, d = squares.narrow(1 - dim, 0, width), denom.narrow(1 - dim, 0, width)
            self._window_sum(torch.mul(xs, xs, out=sq), dim, out=d)
            torch.div(xs, self._power(d, scratch=sq), out=out.narrow(1 - dim, start, width))

    def _window_sum(self, squares: torch.Tensor, dim: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """``k + alpha / size * sum`` of ``squares`` over each channel window along ``dim``."""
        total = squares.clone() if out is None else out.copy_(squares)
        c = squares.shape[dim]
        for offset in range(1, min(self.size // 2, c - 1) + 1):  # channel c - offset
            total.narrow(dim, offset, c - offset).add_(squares.narrow(dim, 0, c - offset))
        for offset in range(1, min((self.size - 1) // 2, c - 1) + 1):  # channel c + offset
            total.narrow(dim, 0, c - offset).add_(squares.narrow(dim, offset, c - offset))
        return total.mul_(self.alpha / self.size).add_(self.k)

    def _power(self, denom: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        """``denom ** beta``, in place; ``scratch`` (same shape) is overwritten."""
        if self.beta == 0.75:  # d ** 0.75 == sqrt(d) * sqrt(sqrt(d))
            root = torch.sqrt(denom, out=scratch).sqrt_()
            return denom.sqrt_().mul_(root)
        if self.beta == 0.5:
            return denom.sqrt_()
        return denom.pow_(self.beta)


class Linear(nn.Linear):
    """``nn.Linear`` (same arguments, parameters, keys and ``repr``), faster on CPU for a batch of
    rows.

    With a few rows of ``x`` and a large ``W``, MKL computes ``x @ W.T`` more slowly than
    ``(W @ x.T).T``, reading ``W`` as the transposed operand (measured in docs/benchmarks.md,
    ``python -m benchmarks.layers``). The result is the same up to fp32 rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _captured(x) or x.dim() != 2 or x.device.type != "cpu" or self.bias is None:
            return super().forward(x)
        return torch.addmm(self.bias.unsqueeze(1), self.weight, x.t()).t().contiguous()

    def __prepare_scriptable__(self):  # torch.jit.script calls this first: a clear refusal
        _refuse_scripting(self)

    @classmethod
    def replacing(cls, linear: nn.Linear) -> "Linear":
        """A ``Linear`` holding ``linear``'s own parameters (so its initialization is kept)."""
        fast = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta")
        fast.weight, fast.bias = linear.weight, linear.bias
        return fast


def _captured(x) -> bool:
    """Whether ``x`` flows into a captured graph (``torch.jit.trace``, ``torch.export``,
    ``torch.compile``, both ONNX exporters, ``torch.fx``). There the fast modules record PyTorch's
    own op, so the graph is the literal model's: the blocked LRN's in-place writes into views are
    what the TorchScript-based ONNX exporter drops (pytorch#122290), and a compiler fuses the plain
    ops itself."""
    return isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling() or torch.jit.is_tracing()


def _refuse_scripting(module: nn.Module) -> None:
    raise RuntimeError(
        f"torch.jit.script cannot compile alexnet_torch.layers.{type(module).__name__}: "
        "alexnet_torch.optimize(model) put in modules whose fast path is eager Python. Script the model "
        "as built instead (scripted = torch.jit.script(alexnet_torch.build(variant)), then "
        "scripted.load_state_dict(model.state_dict()): optimize keeps the keys), or capture the "
        "optimized model with torch.jit.trace or torch.export, which record PyTorch's own ops."
    )


# Elements per block: two buffers of it stay in a core's cache, and blocks are few enough that
# per-call overhead is small (python -m benchmarks.layers on 2 cores: 2**18 and 2**20 within noise of
# each other, 2**16 and 2**22 slower).
BLOCK_ELEMENTS = 1 << 18


def _pixel_rows(x: torch.Tensor) -> torch.Tensor:
    """A channels_last ``(n, c, h, w)`` tensor as a ``(n * h * w, c)`` view."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).view(n * h * w, c)


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last memory when it is a 4-D CPU tensor, else ``x`` itself (the values
    and the NCHW shape a caller sees do not change; oneDNN's CPU convolutions run faster on it)."""
    if x.device.type == "cpu" and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x
