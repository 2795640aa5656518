"""The spec is the check: both literal models of every variant, walked layer by layer against
``alexnet_spec.shapes`` (names, order, output shapes, parameter counts), and the port tables held
to the modules' and layers' real names."""

import pytest
import torch

import alexnet_keras
import alexnet_torch
from alexnet_spec import get_spec
from alexnet_spec.shapes import COUNTS, get_layers
from alexnet_spec.tables import get_table

TORCH_KIND = {"conv": torch.nn.Conv2d, "dense": torch.nn.Linear, "batchnorm": torch.nn.modules.batchnorm._BatchNorm}


def _torch_leaf_shapes(model, spec):
    """(module path, output shape per image) of every leaf module, in the order they ran."""
    seen, handles = [], []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_hook(lambda m, a, out, name=name: seen.append((name, tuple(out.shape[1:])))))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *spec.input_shape_nchw))
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("variant", alexnet_torch.VARIANTS)
def test_torch_model_is_the_spec_layer_by_layer(variant):
    spec, expected = get_spec(variant), get_layers(variant)
    model = alexnet_torch.build(variant)
    assert _torch_leaf_shapes(model, spec) == [(layer.torch, layer.shape) for layer in expected if layer.torch]
    assert sum(p.numel() for p in model.parameters()) == COUNTS[variant].torch_params


@pytest.mark.parametrize("variant", alexnet_keras.VARIANTS)
def test_keras_model_is_the_spec_layer_by_layer(variant):
    expected = get_layers(variant)
    model = alexnet_keras.build(variant)
    found = [(layer.name, tuple(layer.output.shape[1:])) for layer in model.layers[1:]]  # after the Input
    channels_last = [(layer.keras, layer.shape[1:] + layer.shape[:1] if len(layer.shape) == 3 else layer.shape)
                     for layer in expected]
    assert found == channels_last
    assert model.count_params() == COUNTS[variant].keras_weights


@pytest.mark.parametrize("variant", alexnet_torch.VARIANTS)
def test_port_table_names_the_real_modules_and_layers(variant):
    table = get_table(variant)
    module, model = alexnet_torch.build(variant), alexnet_keras.build(variant)
    weighted = [name for name, m in module.named_modules() if name and list(m.parameters(recurse=False))]
    assert [e.torch for e in table.entries] == weighted  # every weighted module, in order, nothing else
    assert [e.keras for e in table.entries] == [layer.name for layer in model.layers if layer.weights]
    state = module.state_dict()
    keras_weights = {f"{layer.name}/{w.name}": tuple(w.shape) for layer in model.layers for w in layer.weights}
    for entry in table.entries:
        assert isinstance(module.get_submodule(entry.torch), TORCH_KIND[entry.kind]), entry
        assert set(entry.torch_keys()) <= set(state), entry
        assert set(entry.keras_names()) <= set(keras_weights), entry
        torch_size = sum(state[k].numel() for k in entry.torch_keys())
        keras_size = sum(int(torch.tensor(keras_weights[n]).prod()) for n in entry.keras_names())
        assert torch_size == keras_size, entry
    layers = {layer.keras: layer for layer in get_layers(variant)}
    for entry in table.entries:  # the table and the shapes agree on which module is which layer
        assert layers[entry.keras].torch == entry.torch
        if entry.flatten_from is not None:
            assert entry.flatten_from == spec_feature_map(variant)


def spec_feature_map(variant):
    """The last 3-D map before the classifier, from the shapes table."""
    return [layer.shape for layer in get_layers(variant) if len(layer.shape) == 3][-1]
