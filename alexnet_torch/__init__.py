"""AlexNet in PyTorch: every variant of the source document, one file each.

``build(variant)`` is the registry; the named builders beside it are the idiomatic spelling.
This package never imports tensorflow or keras.
"""

from __future__ import annotations

from torch import nn

from alexnet_spec import VARIANTS as _SPEC_VARIANTS
from alexnet_torch.cifar import AlexNetCifar, alexnet_cifar
from alexnet_torch.paper import AlexNetPaper, alexnet_paper
from alexnet_torch.weights import load_state, load_weights, read_state_dict, save_weights

_BUILDERS = {
    "paper": alexnet_paper,
    "cifar": alexnet_cifar,
}
VARIANTS: tuple[str, ...] = tuple(v for v in _SPEC_VARIANTS if v in _BUILDERS)


def build(variant: str, num_classes: int | None = None, **options) -> nn.Module:
    """A freshly built ``variant`` (random initialization unless ``weights=`` is given)."""
    if variant not in _BUILDERS:
        raise ValueError(f"unknown AlexNet variant {variant!r}; expected one of {', '.join(map(repr, VARIANTS))}")
    if num_classes is not None:
        options["num_classes"] = num_classes
    return _BUILDERS[variant](**options)


__all__ = [
    "VARIANTS",
    "AlexNetCifar",
    "AlexNetPaper",
    "alexnet_cifar",
    "alexnet_paper",
    "build",
    "load_state",
    "load_weights",
    "read_state_dict",
    "save_weights",
]
