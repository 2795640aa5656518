"""Framework-neutral facts about every AlexNet variant, how their weights are laid out and ported,
and how weight files are written (the ``.safetensors`` exchange format, atomic writes, sidecars).

``alexnet_torch`` and ``alexnet_keras`` write their networks out layer by layer; these facts are
what tests hold both to (input sizes, each layer's output shape, parameter counts: ``shapes``), and
``parity`` ports weights with the tables here (``tables``), checked against the real modules.
This package imports numpy at most: never torch, never tensorflow or keras.
"""

from alexnet_spec.variants import (
    LRN_FLAVOURS,
    LRN_ALIASES,
    VARIANTS,
    Conv,
    LRNParams,
    VariantSpec,
    get_spec,
    lrn_flavour,
)

__all__ = ["LRN_ALIASES", "LRN_FLAVOURS", "VARIANTS", "Conv", "LRNParams", "VariantSpec", "get_spec", "lrn_flavour"]
