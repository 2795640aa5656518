"""Input validation with messages that say what was expected, what was found and what to do."""

from __future__ import annotations

from typing import Optional

import torch

from alexnet_spec import VariantSpec, get_spec


def check_input(x: torch.Tensor, spec: VariantSpec, dtype: torch.dtype | None = None) -> None:
    """``dtype``: the model's parameter dtype, which the input must match outside autocast."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, found {type(x).__name__}; convert with torch.as_tensor(x)")
    if not x.is_floating_point():
        raise TypeError(
            f"AlexNet {spec.name!r} expects a floating-point image batch; found dtype {x.dtype}. Convert it "
            "with x.float() (and scale uint8 pixels as the model was trained: alexnet_torch.transforms does)."
        )
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"AlexNet {spec.name!r} has {dtype} weights; found a {x.dtype} input. Pass x.to({dtype}) "
            f"(x.float() for float32), or convert the model with model.to({x.dtype})."
        )
    if x.ndim != 4:
        hint = " Add the batch axis with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(
            f"AlexNet {spec.name!r} expects an NCHW batch of shape (N, {spec.channels}, H, W); "
            f"found a {x.ndim}-D tensor of shape {tuple(x.shape)}.{hint}"
        )
    _, c, h, w = x.shape
    if c != spec.channels:
        if x.shape[-1] == spec.channels:
            raise ValueError(
                f"AlexNet {spec.name!r} expects NCHW input (N, {spec.channels}, H, W); found shape "
                f"{tuple(x.shape)}, which looks like NHWC (channels last). PyTorch models take "
                f"channels first: pass x.permute(0, 3, 1, 2)."
            )
        raise ValueError(
            f"AlexNet {spec.name!r} expects {spec.channels} input channels (RGB) on axis 1; found {c} "
            f"in shape {tuple(x.shape)}. Convert grayscale or RGBA images to RGB first."
        )
    if spec.min_input_size is None and (h, w) != (spec.input_size, spec.input_size):
        raise ValueError(
            f"AlexNet {spec.name!r} expects {spec.input_size}x{spec.input_size} inputs; found "
            f"{h}x{w}. {spec.size_hint}"
        )
    if spec.min_input_size is not None and min(h, w) < spec.min_input_size:
        raise ValueError(
            f"AlexNet {spec.name!r} needs inputs of at least {spec.min_input_size}x"
            f"{spec.min_input_size}; found {h}x{w}. "
            f"{spec.size_hint}"
        )


# --8<-- [start:guard]
@torch.jit.unused
def check_variant_input(x: torch.Tensor, variant: str, dtype: Optional[torch.dtype] = None) -> None:
    """:func:`check_input` for the models' ``forward``, written so that PyTorch's tools still work.

    ``torch.fx.symbolic_trace`` records this call as one node (``torch.fx.wrap`` below) instead of
    tracing into its Python ``if``s, which a Proxy cannot answer; ``torch.jit.script`` skips it
    (the models call it under ``if not torch.jit.is_scripting()``, and ``torch.jit.unused`` keeps
    the compiler out of it); ``torch.jit.trace`` and ``torch.export`` run it on concrete shapes.
    """
    check_input(x, get_spec(variant), dtype)


torch.fx.wrap("check_variant_input")
# --8<-- [end:guard]
