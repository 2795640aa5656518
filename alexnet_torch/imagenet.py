"""torchvision's pretrained ImageNet AlexNet (the "One weird trick" network), with our input checks.

torchvision's own ``AlexNet`` class and ``AlexNet_Weights`` enum are used as they are: the state_dict
keys, the download, its hash check and the transforms are torchvision's. This file adds what the
other variants have: the ``variant`` name, clear input errors, and weights from a local file.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn
from torchvision.models import AlexNet, AlexNet_Weights

from alexnet_spec import get_spec
from alexnet_spec.variants import check_num_classes
from alexnet_torch._checks import check_input
from alexnet_torch.layers import ChannelsLastOnCPU, Linear

SPEC = get_spec("torchvision")


# --8<-- [start:model]
class AlexNetTorchvision(ChannelsLastOnCPU, AlexNet):
    """``torchvision.models.AlexNet`` for NCHW RGB input of at least 63x63 (224x224 for ImageNet).

    On CPU it runs channels_last inside (an ordinary NCHW tensor in, the same numbers out), and its
    linear layers are ``alexnet_torch.layers.Linear`` (the same parameters, read faster); see
    docs/benchmarks.md for what each change measured."""

    variant = "torchvision"

    def __init__(self, num_classes: int = SPEC.num_classes, dropout: float = SPEC.dropout) -> None:
        super().__init__(num_classes=check_num_classes(num_classes), dropout=dropout)
        for i, layer in enumerate(self.classifier):
            if isinstance(layer, nn.Linear):
                self.classifier[i] = Linear.replacing(layer)
        self.options: dict = {}
        self.use_channels_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, SPEC, self.features[0].weight.dtype)
        return super().forward(self.fast_layout(x))
# --8<-- [end:model]


def resolve_weights(weights) -> AlexNet_Weights | None:
    """torchvision's enum for ``"IMAGENET1K_V1"``/``"DEFAULT"``/an enum member; None for a path."""
    if isinstance(weights, AlexNet_Weights):
        return weights
    if isinstance(weights, str) and weights in AlexNet_Weights.__members__:
        return AlexNet_Weights[weights]
    return None


def alexnet_torchvision(
    *,
    weights: str | os.PathLike | AlexNet_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    **options,
) -> AlexNetTorchvision:
    """torchvision's AlexNet; ``weights`` is None (random), ``"IMAGENET1K_V1"`` (downloaded by
    torchvision into its cache and hash-checked, with a progress bar when ``progress``), or a
    checkpoint path (torchvision's ``.pth`` as it is, or our ``.safetensors``)."""
    enum = resolve_weights(weights)
    if enum is not None:
        categories = len(enum.meta["categories"])
        if num_classes not in (None, categories):
            raise ValueError(
                f"{enum} has {categories} classes; found num_classes={num_classes}. Load it with "
                "num_classes left out, then replace model.classifier[6] to fine-tune."
            )
        model = AlexNetTorchvision(categories, **options)
        # weights_only: the checkpoint is a plain state_dict, so nothing in it needs to run
        state = enum.get_state_dict(progress=progress, check_hash=True, weights_only=True)
        model.load_state_dict(state, strict=True)
        return model
    if isinstance(weights, str) and not os.path.exists(weights) and re.fullmatch(r"[A-Z0-9_]+", weights):
        raise ValueError(
            f"unknown torchvision weights {weights!r}; expected one of {', '.join(AlexNet_Weights.__members__)} "
            "or a checkpoint file"
        )
    model = AlexNetTorchvision(SPEC.num_classes if num_classes is None else num_classes, **options)
    if weights is not None:
        from alexnet_torch.weights import load_weights

        load_weights(model, weights)
    return model
