"""torchvision's pretrained ImageNet AlexNet (the "One weird trick" network), with our input checks.

torchvision's own ``AlexNet`` class and ``AlexNet_Weights`` enum are used as they are: the layers,
the state_dict keys, the initialization, the download, its hash check and the transforms are
torchvision's. This file adds what the other variants have: the ``variant`` name, clear input
errors, and weights from a local file.

The module is named after the variant, as the others are. It does not shadow the ``torchvision``
package: imports are absolute, so ``from torchvision.models import ...`` below is torchvision's
own (a test checks it). Only running this file as a script (``python alexnet_torch/torchvision.py``,
which puts ``alexnet_torch/`` first on ``sys.path``) would; nothing does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torchvision.models import AlexNet, AlexNet_Weights

from alexnet_spec.variants import check_num_classes
from alexnet_torch import _checks

NUM_CLASSES = 1000  # ImageNet-1K


# --8<-- [start:model]
class AlexNetTorchvision(AlexNet):
    """``torchvision.models.AlexNet``, layers unchanged, for NCHW RGB input of at least 63x63
    (224x224 for ImageNet). ``forward`` is torchvision's, after the input check."""

    variant = "torchvision"

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.5) -> None:
        super().__init__(num_classes=check_num_classes(num_classes), dropout=dropout)
        self.options: dict[str, str] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _checks.check_variant_input(x, "torchvision", self.features[0].weight.dtype)
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x
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
    model = AlexNetTorchvision(NUM_CLASSES if num_classes is None else num_classes, **options)
    if weights is not None:
        from alexnet_torch.weights import load_weights

        load_weights(model, weights)
    return model


def pretrained_file(name: str = "IMAGENET1K_V1", *, progress: bool = True) -> tuple[Path, str]:
    """torchvision's checkpoint of the published weights ``name`` and its sha256: the file in
    torch's cache (``$TORCH_HOME/hub/checkpoints``), downloaded there once by torchvision with its
    hash check. The hash is checked again here on every use (torch checks it only on download),
    so a truncated or replaced file in the cache is refused before it is read."""
    from alexnet_spec.imagenet import get_pretrained
    from alexnet_spec.messages import first_line

    published = get_pretrained(name)
    path = Path(torch.hub.get_dir()) / "checkpoints" / published.file_name
    if not path.is_file():
        try:
            AlexNet_Weights[name].get_state_dict(progress=progress, check_hash=True, weights_only=True)
        except (OSError, RuntimeError) as err:  # offline, a proxy, a full disk; RuntimeError: a bad hash
            raise ValueError(
                f"could not download {name} ({published.url}): {first_line(err)}. With no network, fetch that "
                f"file elsewhere and copy it to {path} (torch's cache, $TORCH_HOME/hub/checkpoints), or start "
                "from a weight file of your own."
            ) from err
    digest, matches = published.file_digest(path)
    if not matches:
        raise ValueError(
            f"{path} is not torchvision's {name}: its sha256 starts {digest[:8]}, the name says "
            f"{published.sha256_prefix}. It is truncated or another file; delete it to download it again, "
            f"or copy the file from {published.url} there."
        )
    return path, digest
