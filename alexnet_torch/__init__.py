"""AlexNet in PyTorch: every variant of the source document, one file each, with its training loop
(``training``) and its data-parallel engine under torchrun (``distributed``).

``build(variant)`` is the registry; the named builders beside it are the idiomatic spelling.
This package never imports tensorflow or keras.
"""

from __future__ import annotations

import sys

if "tensorflow" in sys.modules and "triton" not in sys.modules:
    # TensorFlow came first: triton, which torchvision loads, would now crash the process inside
    # dlopen (tensorflow#124205; parity/_triton.py). It compiles GPU kernels only: run without it.
    sys.modules["triton"] = None

from torch import nn  # noqa: E402

from alexnet_spec import VARIANTS as _SPEC_VARIANTS
from alexnet_spec.variants import build_variant
from alexnet_torch.cifar import AlexNetCifar, alexnet_cifar
from alexnet_torch.fast import optimize
from alexnet_torch.optim import DecoupledSGD
from alexnet_torch.torchvision import AlexNetTorchvision, alexnet_torchvision
from alexnet_torch.paper import AlexNetPaper, alexnet_paper
from alexnet_torch.preprocessing import decode_predictions, load_image, transforms
from alexnet_torch.weights import load_state, load_weights, read_state_dict, save_weights

_BUILDERS = {
    "paper": alexnet_paper,
    "cifar": alexnet_cifar,
    "torchvision": alexnet_torchvision,
}
VARIANTS: tuple[str, ...] = _SPEC_VARIANTS
assert set(_BUILDERS) == set(VARIANTS), "every variant in alexnet_spec needs a builder here"


def build(variant: str, num_classes: int | None = None, **options) -> nn.Module:
    """A freshly built ``variant`` (random initialization unless ``weights=`` is given)."""
    return build_variant(_BUILDERS, variant, num_classes, options)


__all__ = [
    "VARIANTS",
    "AlexNetCifar",
    "AlexNetPaper",
    "AlexNetTorchvision",
    "DecoupledSGD",
    "alexnet_cifar",
    "alexnet_paper",
    "alexnet_torchvision",
    "build",
    "decode_predictions",
    "load_image",
    "load_state",
    "load_weights",
    "optimize",
    "read_state_dict",
    "save_weights",
    "transforms",
]
