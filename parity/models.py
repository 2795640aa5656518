"""In-memory ports between a torch.nn.Module and a keras.Model, through the numpy engine."""

from __future__ import annotations

import numpy as np

from alexnet_spec import LRN_FLAVOURS
from alexnet_spec.port import PortError, infer_variant, num_classes_of_keras, num_classes_of_torch
from alexnet_spec.port import keras_to_torch as _keras_to_torch_arrays
from alexnet_spec.port import torch_to_keras as _torch_to_keras_arrays
from alexnet_spec.tables import get_table
from alexnet_spec.variants import check_options


def torch_state(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def torch_options(module) -> dict:
    """Build options that weights alone cannot tell: ours carry them; the document's class has
    none, so its LocalResponseNorm settings are matched to a known flavour."""
    if hasattr(module, "options"):
        return dict(module.options)
    import torch.nn as nn

    norms = [m for m in module.modules() if isinstance(m, nn.LocalResponseNorm)]
    if not norms:
        return {}
    n = norms[0]
    for flavour, p in LRN_FLAVOURS.items():
        if (n.size, n.alpha, n.beta, n.k) == (p.size, p.alpha, p.beta, p.k):
            return {"lrn": flavour}
    raise ValueError(
        f"LocalResponseNorm(size={n.size}, alpha={n.alpha}, beta={n.beta}, k={n.k}) matches no known "
        f"flavour ({', '.join(f'{k}: {v}' for k, v in LRN_FLAVOURS.items())})"
    )


def torch_variant(module, state=None) -> str:
    variant = getattr(module, "variant", None)
    return variant or infer_variant(torch_keys=list(state if state is not None else module.state_dict()))


def keras_variant(model) -> str:
    variant = getattr(model, "variant", None)
    return variant or infer_variant(keras_layers=[layer.name for layer in model.layers if layer.weights])


def torch_to_keras(module, variant: str | None = None, **options):
    """A Keras model computing what ``module`` computes, weights ported. ``options`` override the
    build options read from the module (e.g. ``lrn="paper"``)."""
    import alexnet_keras
    from alexnet_keras.weights import expected_shapes, set_layer_weights

    state = torch_state(module)
    variant = variant or torch_variant(module, state)
    table = get_table(variant)
    build = {**check_options(variant, torch_options(module)), **options, "num_classes": num_classes_of_torch(table, state)}
    model = alexnet_keras.build(variant, **build)
    return set_layer_weights(model, _torch_to_keras_arrays(table, state, expected_shapes(model)))


def keras_to_torch(model, variant: str | None = None, **options):
    """A torch module computing what ``model`` computes, weights ported."""
    import torch

    import alexnet_torch
    from alexnet_keras.weights import layer_weights

    variant = variant or keras_variant(model)
    table = get_table(variant)
    head = next((layer for layer in model.layers if layer.name == table.output.keras), None)
    activation = getattr(getattr(head, "activation", None), "__name__", "linear")
    if activation != "linear":
        raise ValueError(
            f"the Keras model's {head.name!r} layer applies {activation}, which the torch {variant!r} "
            f"model does not: their outputs would differ. Port a model built with "
            f"classifier_activation=None (logits), as alexnet_keras.build({variant!r}) is."
        )
    weights = layer_weights(model)
    build = {**check_options(variant, dict(getattr(model, "options", {}))), **options,
             "num_classes": num_classes_of_keras(table, weights)}
    module = alexnet_torch.build(variant, **build)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    state = _keras_to_torch_arrays(table, weights, expected)
    return alexnet_torch.load_state(module, {k: torch.from_numpy(v) for k, v in state.items()})


__all__ = ["PortError", "keras_to_torch", "torch_to_keras"]
