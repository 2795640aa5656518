"""Keras weight files: ``.weights.h5`` (Keras's own) and ``.safetensors`` in PyTorch's layout,
converted here with numpy alone so a Keras-only install can use weights ported from PyTorch."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras

from alexnet_spec import checksum, exchange
from alexnet_spec.files import atomic_write
from alexnet_spec.messages import first_line, require_file
from alexnet_spec.port import keras_to_torch, torch_to_keras
from alexnet_spec.tables import get_table


def _dense_layout(layer, arrays: list) -> list:
    """The arrays with a kernel as ``Dense`` stores it, (input_dim, units): the layout every port
    and file uses. ``optimize``'s ``TransposedDense`` stores it the other way round; transposing
    is its own inverse, so this serves reading and writing alike."""
    if getattr(layer, "kernel_transposed", False):
        kernel = arrays[0]
        return [kernel[::-1] if isinstance(kernel, tuple) else kernel.T, *arrays[1:]]
    return arrays


def layer_weights(model: keras.Model) -> dict[str, list]:
    """Weights per layer name, numpy, for layers that have any; dense kernels in ``Dense``'s layout."""
    return {layer.name: _dense_layout(layer, [w.numpy() if hasattr(w, "numpy") else keras.ops.convert_to_numpy(w)
                                              for w in layer.weights])
            for layer in model.layers if layer.weights}


def expected_shapes(model: keras.Model) -> dict[str, tuple]:
    return {f"{layer.name}/{w.name}": shape for layer in model.layers
            for w, shape in zip(layer.weights, _dense_layout(layer, [tuple(w.shape) for w in layer.weights]))}


def set_layer_weights(model: keras.Model, weights: dict[str, list]) -> keras.Model:
    for name, arrays in weights.items():
        layer = model.get_layer(name)
        layer.set_weights(_dense_layout(layer, arrays))
    return model


def load_weights(model: keras.Model, path: str | os.PathLike) -> keras.Model:
    path = require_file(path)
    if path.suffix == ".safetensors":
        ex = exchange.load(path, getattr(model, "variant", None))
        table = get_table(ex.variant)
        return set_layer_weights(model, torch_to_keras(table, ex.state, expected_shapes(model)))
    if path.name.endswith(".weights.h5"):
        checksum.verify(path)  # when a .sha256 sidecar is there
        before = model.get_weights()  # Keras assigns what fits before it raises: undo a partial load
        try:
            with warnings.catch_warnings(record=True) as caught:  # Keras warns, then raises: say it once
                warnings.simplefilter("always")
                model.load_weights(path)
        except Exception as err:  # h5py and Keras raise many types for foreign or truncated files
            model.set_weights(before)
            raise ValueError(
                f"{path} could not be loaded into {model.name} ({first_line(err)}). It may be "
                "truncated, or saved from another variant or num_classes, or from a model of "
                "alexnet_keras.optimize() into a plain one or the other way round (Keras files them "
                "by layer class): use .safetensors between those."
            ) from err
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return model
    raise ValueError(f"{path}: unknown weight format; expected .weights.h5 or .safetensors")


def save_weights(model: keras.Model, path: str | os.PathLike, *, overwrite: bool = False, sidecar: bool = False) -> Path:
    """Write weights atomically as ``.weights.h5``, ``.keras`` (whole model) or ``.safetensors``;
    with ``sidecar``, a ``sha256sum`` file beside it that every reader here verifies."""
    path = Path(path)
    if path.suffix == ".safetensors":
        table = get_table(model.variant)
        record = exchange.Exchange(keras_to_torch(table, layer_weights(model)), model.variant, dict(model.options))
        return exchange.save(path, record, overwrite=overwrite, sidecar=sidecar)
    if path.name.endswith(".weights.h5"):
        return atomic_write(path, model.save_weights, overwrite=overwrite, sidecar=sidecar)
    if path.suffix == ".keras":
        return atomic_write(path, model.save, overwrite=overwrite, sidecar=sidecar)
    raise ValueError(f"{path}: choose a .weights.h5, .keras or .safetensors file name")
