"""AlexNet in Keras 3: every variant of the source document, one file each, with its training loop
(``training``: ``model.fit``) and Keras's data-parallel engines (``distributed``).

The models are written with ``keras.layers`` and ``keras.ops`` only, so they run on any Keras
backend; only ``distributed`` reaches for TensorFlow or JAX, inside the engine that needs it.
``build(variant)`` is the registry; the named builders beside it are the idiomatic spelling.
This package never imports torch.
"""

from __future__ import annotations

import keras

from alexnet_keras.cifar import AlexNetCifar
from alexnet_keras.fast import optimize
from alexnet_keras.torchvision import AlexNet, alexnet_torchvision
from alexnet_keras.layers import LocalResponseNormalization
from alexnet_keras.model import AlexNetModel
from alexnet_keras.paper import AlexNetPaper
from alexnet_keras.preprocessing import decode_predictions, load_image, preprocess_input
from alexnet_keras.weights import load_weights, save_weights
from alexnet_spec import VARIANTS as _SPEC_VARIANTS
from alexnet_spec.variants import build_variant

_BUILDERS = {
    "paper": AlexNetPaper,
    "cifar": AlexNetCifar,
    "torchvision": alexnet_torchvision,
}
VARIANTS: tuple[str, ...] = _SPEC_VARIANTS
assert set(_BUILDERS) == set(VARIANTS), "every variant in alexnet_spec needs a builder here"


def build(variant: str, num_classes: int | None = None, **options) -> keras.Model:
    """A freshly built ``variant`` (random initialization unless ``weights=`` is given)."""
    return build_variant(_BUILDERS, variant, num_classes, options)


__all__ = [
    "VARIANTS",
    "AlexNet",
    "AlexNetCifar",
    "AlexNetModel",
    "AlexNetPaper",
    "LocalResponseNormalization",
    "alexnet_torchvision",
    "build",
    "decode_predictions",
    "load_image",
    "load_weights",
    "optimize",
    "preprocess_input",
    "save_weights",
]
