"""Every weight file the project reads or writes, as one record in PyTorch's layout.

``.pt``/``.pth`` (a state_dict, ``weights_only``), ``.keras`` (``safe_mode``), ``.weights.h5`` and
``.safetensors`` (the framework-neutral exchange format). Reading never runs code from the file;
writing is atomic and never overwrites without ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from alexnet_spec import checksum, exchange
from alexnet_spec.exchange import Exchange
from alexnet_spec.messages import first_line, require_file
from alexnet_spec.port import check_torch_state, infer_variant, num_classes_of_torch
from alexnet_spec.port import torch_to_keras as torch_to_keras_arrays
from alexnet_spec.tables import get_table
from alexnet_spec.variants import check_options

# PyTorch's suffixes are alexnet_torch's (PT_SUFFIXES), written out here so that reading the list
# needs no torch import; tests/test_files_and_cli.py keeps the two equal.
TORCH_FORMATS = (".pt", ".pth", ".bin")
FORMATS = TORCH_FORMATS + (".safetensors", ".keras", ".weights.h5")
# The formats that keep the build options weights cannot tell (the paper network's lrn, the cifar
# network's logits): the safetensors metadata and the .keras model config. A .pt state_dict and a
# .weights.h5 hold weights only; port names what they lose (options_not_kept).
OPTION_FORMATS = (".safetensors", ".keras")
CAFFE_FORMAT = ".caffemodel"  # read only: Caffe's bvlc_alexnet, ported to the paper network


def format_of(path: str | os.PathLike) -> str:
    name = Path(path).name
    for suffix in (".weights.h5",) + FORMATS + (CAFFE_FORMAT,):
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{path}: unknown weight format; expected a file ending in {', '.join(FORMATS + (CAFFE_FORMAT,))}")


def load_keras_model(path: str | os.PathLike):
    """A whole ``.keras`` model, with Keras's safe_mode on (no lambda code is deserialized)."""
    import keras

    import alexnet_keras  # noqa: F401  (registers our layers for deserialization)

    path = require_file(path, "model file")
    checksum.verify(path)  # when a .sha256 sidecar is there
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras archive (a zip file); it may be truncated or of another format")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for foreign, hostile or broken archives
        raise ValueError(f"{path} could not be loaded safely as a Keras model: {first_line(err)}") from err


def keras_archive_config(path: str | os.PathLike) -> tuple[str | None, dict]:
    """(variant, build options) a ``.keras`` archive of ours names in its ``config.json``, read as
    JSON without Keras (nothing is deserialized); (None, {}) for a Keras model of another kind."""
    path = require_file(path, "model file")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json")).get("config")
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, AttributeError) as err:
        raise ValueError(f"{path} is not a readable .keras archive ({first_line(err)}); it may be truncated or "
                         "of another format") from err
    if not isinstance(config, dict) or not isinstance(config.get("variant"), str):
        return None, {}
    options = config.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"{path}: its model config's options must be a JSON object; found {options!r}")
    return config["variant"], check_options(config["variant"], options)


def read(path: str | os.PathLike, variant: str | None = None, options: dict | None = None) -> Exchange:
    """Any supported file as (torch-layout state, variant, options)."""
    fmt = format_of(path)
    options = dict(options or {})
    if fmt in TORCH_FORMATS:
        from alexnet_torch.weights import read_state_dict

        state, _ = read_state_dict(path)
        state = {k: v.numpy() for k, v in state.items()}
        variant = variant or infer_variant(torch_keys=list(state))
        record = Exchange(state, variant, options)
    elif fmt == CAFFE_FORMAT:
        record = read_caffe(path, variant, options)
    elif fmt == ".safetensors":
        record = exchange.load(path, variant)
        record.options.update(options)
    elif fmt == ".keras":
        from parity.models import keras_to_torch, torch_state

        model = load_keras_model(path)
        module = keras_to_torch(model, variant, **options)
        record = Exchange(torch_state(module), module.variant, dict(module.options))
    else:
        record = _read_weights_h5(Path(path), variant, options)
    check_options(record.variant, record.options)
    check_torch_state(get_table(record.variant), record.state, _torch_shapes(record))  # names every problem
    return record


def read_caffe(path: str | os.PathLike, variant: str | None = None, options: dict | None = None) -> Exchange:
    """Caffe's bvlc_alexnet as the ``paper`` network with Caffe's LRN (``lrn="caffe"``), its
    weights unchanged: the network takes Caffe's input (BGR, 0..255, mean subtracted)."""
    from alexnet_spec import caffe

    if variant not in (None, "paper"):
        raise ValueError(f"{path}: a Caffe bvlc_alexnet model is the 'paper' network, not {variant!r}; "
                         "leave out --variant or pass --variant paper")
    options = dict(options or {})
    if options.get("lrn", "caffe") not in ("caffe", "document"):
        raise ValueError(f"{path}: bvlc_alexnet was trained with Caffe's LRN; lrn={options['lrn']} would compute "
                         "something else. Leave out the lrn option.")
    options["lrn"] = "caffe"
    return Exchange(caffe.paper_state(path), "paper", options, preprocessing="caffe")


PREPROCESSING = ("auto", "torchvision", "caffe")


def preprocessing_for(weights: str | os.PathLike, choice: str = "auto") -> str:
    """The input a weight file reads, for ``alexnet-predict`` and ``alexnet-eval``.

    ``auto``: ``"caffe"`` (BGR, 0..255, mean subtracted) for Caffe's weights, a ``.caffemodel`` or a
    ``.safetensors`` ported from one (its metadata says ``preprocessing: caffe``); ``"torchvision"``
    for every other file (``alexnet-train``'s recipes normalize as torchvision does), ``imagenet`` and
    ``random``. The ``paper`` network's ``lrn="caffe"`` is no sign: it is that network's default LRN.
    ``.pt``, ``.keras`` and ``.weights.h5`` files carry no such record; name the choice for them."""
    if choice not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {', '.join(PREPROCESSING)}; found {choice!r}")
    if choice != "auto":
        return choice
    name = str(weights)
    if name.endswith(CAFFE_FORMAT):
        return "caffe"
    if name.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(name, framework="numpy") as f:
                return "caffe" if (f.metadata() or {}).get("preprocessing") == "caffe" else "torchvision"
        except (OSError, ValueError, RuntimeError):
            return "torchvision"  # the weights' own reader reports a bad file, with its path
    return "torchvision"


def _meta_module(variant: str, options: dict, state: dict | None = None):
    """A torch model of ``variant`` (of the class count ``state`` holds), built on the meta device
    (no memory): its shapes, and its options as the builder normalizes them."""
    import torch

    import alexnet_torch

    bias = get_table(variant).output.torch_keys()[1]
    extra = {"num_classes": int(np.shape(state[bias])[0])} if state and bias in state else {}
    with torch.device("meta"):
        return alexnet_torch.build(variant, **extra, **options)


def _torch_shapes(record: Exchange) -> dict[str, tuple]:
    """The shapes a model of the record's variant has."""
    module = _meta_module(record.variant, record.options, record.state)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def options_not_kept(record: Exchange, path: str | os.PathLike) -> dict:
    """The build options of ``record`` a file at ``path`` loses: none for the OPTION_FORMATS; for
    the others, those a reader's default build would not give back (e.g. ``logits=True``)."""
    if format_of(path) in OPTION_FORMATS:
        return {}
    built = _meta_module(record.variant, record.options).options
    default = _meta_module(record.variant, {}).options
    return {k: v for k, v in built.items() if default.get(k) != v}


def _read_weights_h5(path: Path, variant: str | None, options: dict) -> Exchange:
    import alexnet_keras
    from parity.models import keras_to_torch, torch_state

    require_file(path)
    num_classes = _h5_num_classes(path)
    candidates = [variant] if variant else list(alexnet_keras.VARIANTS)
    errors = []
    for name in candidates:
        model = alexnet_keras.build(name, num_classes=num_classes, **options)
        try:
            alexnet_keras.load_weights(model, path)
        except ValueError as err:
            errors.append(f"{name}: {first_line(err)}")
            continue
        module = keras_to_torch(model)
        return Exchange(torch_state(module), name, dict(module.options))
    raise ValueError(f"{path} fits no AlexNet variant: " + "; ".join(errors))


def _h5_num_classes(path: Path) -> int | None:
    """The width of the last Dense layer in a Keras 3 ``.weights.h5`` (layers/dense_N/vars/1)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            layers = f["layers"]
            dense = sorted(
                (int(m.group(1) or 0), name)
                for name in layers
                if (m := re.fullmatch(r"dense(?:_(\d+))?", name)) and "1" in layers[name]["vars"]
            )
            return int(layers[dense[-1][1]]["vars"]["1"].shape[0]) if dense else None
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path} is not a readable Keras .weights.h5 file ({err}); it may be truncated or of another format"
        ) from err


def torch_model(record: Exchange):
    """The record as a torch module of its variant and class count (every weight checked)."""
    import alexnet_torch

    return load_torch(alexnet_torch.build(record.variant, num_classes=num_classes(record), **record.options), record)


def keras_model(record: Exchange):
    """The record as a Keras model of its variant and class count (every weight checked)."""
    import alexnet_keras

    return load_keras(alexnet_keras.build(record.variant, num_classes=num_classes(record), **record.options), record)


def load_torch(module, record: Exchange):
    """The record's weights into a built torch ``module`` (any build options, e.g. dropout), every
    weight checked; nothing is loaded when one does not fit."""
    import torch

    import alexnet_torch

    state = {k: torch.from_numpy(np.array(v)) for k, v in record.state.items()}
    return alexnet_torch.load_state(module, state, source=f"{record.variant} weights")


def load_keras(model, record: Exchange):
    """The record's weights into a built Keras ``model``, ported to Keras's layout (every weight
    checked before any is set)."""
    from alexnet_keras.weights import expected_shapes, set_layer_weights

    return set_layer_weights(model, torch_to_keras_arrays(get_table(record.variant), record.state, expected_shapes(model)))


def num_classes(record: Exchange) -> int:
    return num_classes_of_torch(get_table(record.variant), record.state)


def write(record: Exchange, path: str | os.PathLike, *, overwrite: bool = False, sidecar: bool = False) -> Path:
    """Write ``record`` in the format ``path``'s suffix names, through the target framework's own
    model so that shapes are checked and framework-only state (BatchNorm counters) is complete."""
    fmt = format_of(path)
    if fmt == CAFFE_FORMAT:
        raise ValueError(f"{path}: Caffe models are read, not written; write one of {', '.join(FORMATS)}")
    if fmt == ".safetensors":
        check_torch_state(get_table(record.variant), record.state, _torch_shapes(record))
        return exchange.save(path, record, overwrite=overwrite, sidecar=sidecar)
    if fmt in TORCH_FORMATS:
        import alexnet_torch

        return alexnet_torch.save_weights(torch_model(record), path, overwrite=overwrite, sidecar=sidecar)
    import alexnet_keras

    return alexnet_keras.save_weights(keras_model(record), path, overwrite=overwrite, sidecar=sidecar)
