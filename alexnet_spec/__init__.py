"""Framework-neutral facts about every AlexNet variant, and how their weights are laid out.

Both ``alexnet_torch`` and ``alexnet_keras`` build their networks from these facts, and ``parity``
ports weights with the tables here, so a hyperparameter, a shape or an input size is written once.
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
