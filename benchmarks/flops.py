"""FLOPs per image, counted from layer shapes (2 x multiply-adds of convolutions and dense layers).

Two independent counts: one from a :class:`VariantSpec` (the architecture as data), one from a
built torch module's layers (works for any module, torchvision's included). Tests hold them equal.
Normalization, pooling and activations are not counted, as in torchvision's GFLOPS figures.
"""

from __future__ import annotations

import math

from alexnet_spec import VariantSpec


def _conv_out(size: int, kernel: int, stride: int, padding) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    if padding == "valid":
        padding = 0
    return (size + 2 * padding - kernel) // stride + 1


def spec_flops(spec: VariantSpec, size: int | None = None) -> int:
    """FLOPs of one ``size`` x ``size`` image (default: the variant's own size) through ``spec``.

    Raises when the conv stack does not reach ``spec.feature_shape`` at the variant's own size:
    the count would then describe some other network.
    """
    side = size or spec.input_size
    h = w = side
    channels = spec.channels
    macs = 0
    for conv in spec.convs:
        h = _conv_out(h, conv.kernel, conv.stride, conv.padding)
        w = _conv_out(w, conv.kernel, conv.stride, conv.padding)
        macs += h * w * conv.filters * (channels // conv.groups) * conv.kernel * conv.kernel
        channels = conv.filters
        if conv.pool:
            h = (h - spec.pool_size) // spec.pool_stride + 1
            w = (w - spec.pool_size) // spec.pool_stride + 1
    if size is None and (channels, h, w) != tuple(spec.feature_shape):
        raise ValueError(
            f"{spec.name}: the conv stack reaches {(channels, h, w)}, the spec says "
            f"{tuple(spec.feature_shape)}; spec_flops does not know this variant's geometry, "
            "count with module_flops instead"
        )
    width = spec.feature_shape[0] * spec.feature_shape[1] * spec.feature_shape[2]
    for units in (*spec.hidden_units, spec.num_classes):
        macs += width * units
        width = units
    return 2 * macs


def module_flops(module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one image of ``input_shape`` (C, H, W) through a torch module, from its layers."""
    import torch
    from torch import nn

    macs = 0

    def conv_hook(mod, args, out):
        nonlocal macs
        kh, kw = mod.kernel_size
        macs += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod, args, out):
        nonlocal macs
        macs += out[0].numel() * mod.in_features

    handles = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    was_training = module.training
    try:
        module.eval()
        with torch.inference_mode():
            module(torch.zeros((1, *input_shape), dtype=next(module.parameters()).dtype))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return 2 * macs
