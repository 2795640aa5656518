"""The 2012 two-tower AlexNet in Keras 3: the source document's PyTorch class, layer for layer.

Grouped ``Conv2D`` stands for the two GPU towers; ``LocalResponseNormalization`` reproduces
PyTorch's LRN exactly. Channels last (NHWC), 227x227x3 input.
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_keras.layers import LocalResponseNormalization, keras_padding
from alexnet_keras.model import AlexNetModel
from alexnet_spec import LRN_FLAVOURS, get_spec
from alexnet_spec.variants import PAPER_INIT_ONE_BIAS, PAPER_INIT_STD, check_num_classes

SPEC = get_spec("paper")


def _initializers(name: str, init: str) -> dict:
    if init == "default":
        return {}
    bias = 1.0 if name in PAPER_INIT_ONE_BIAS else 0.0
    return {
        "kernel_initializer": keras.initializers.RandomNormal(0.0, PAPER_INIT_STD),
        "bias_initializer": keras.initializers.Constant(bias),
    }


def AlexNetPaper(
    num_classes: int = SPEC.num_classes,
    *,
    lrn: str = "document",
    init: str = "default",
    dropout: float = SPEC.dropout,
    weights=None,
    name: str = "alexnet_paper",
) -> AlexNetModel:
    """AlexNet of Krizhevsky et al. (2012) for 227x227x3 (NHWC) input.

    Args:
        num_classes: size of the last layer.
        lrn: ``"document"`` (default; the source document and Caffe: k=1, alpha=1e-4 divided by
            the window of 5) or ``"paper"`` (the 2012 paper: k=2, alpha=1e-4 not divided).
        init: ``"default"`` (Keras's Glorot uniform, zero biases) or ``"paper"`` (weights
            N(0, 0.01); biases 1 in conv2, conv4, conv5, fc1, fc2 and 0 elsewhere).
        dropout: dropout rate of the two hidden dense layers.
        weights: None, or a ``.weights.h5`` / ``.safetensors`` file to load.
    """
    check_num_classes(num_classes)
    if lrn not in LRN_FLAVOURS:
        raise ValueError(f"lrn must be one of {sorted(LRN_FLAVOURS)}; found {lrn!r}")
    if init not in ("default", "paper"):
        raise ValueError(f"init must be 'default' or 'paper'; found {init!r}")
    norm = LRN_FLAVOURS[lrn]

    # --8<-- [start:layers]
    inputs = keras.Input(SPEC.input_shape_nhwc, name="image")
    x = inputs
    for conv in SPEC.convs:
        i = conv.name.removeprefix("conv")
        pad, mode = keras_padding(conv)
        if pad:
            x = layers.ZeroPadding2D(pad, name=f"{conv.name}_pad")(x)
        x = layers.Conv2D(
            conv.filters,
            conv.kernel,
            strides=conv.stride,
            padding=mode,
            groups=conv.groups,
            name=conv.name,
            **_initializers(conv.name, init),
        )(x)
        x = layers.ReLU(name=f"{conv.name}_relu")(x)
        if conv.lrn:
            x = LocalResponseNormalization(norm.size, norm.alpha, norm.beta, norm.k, name=f"norm{i}")(x)
        if conv.pool:
            x = layers.MaxPooling2D(SPEC.pool_size, SPEC.pool_stride, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for j, units in enumerate(SPEC.hidden_units, start=1):
        x = layers.Dense(units, name=f"fc{j}", **_initializers(f"fc{j}", init))(x)
        x = layers.ReLU(name=f"fc{j}_relu")(x)
        x = layers.Dropout(dropout, name=f"fc{j}_dropout")(x)
    outputs = layers.Dense(num_classes, name="predictions", **_initializers("predictions", init))(x)
    # --8<-- [end:layers]

    model = AlexNetModel(inputs, outputs, name=name, variant="paper", options={"lrn": lrn})
    if weights is not None:
        from alexnet_keras.weights import load_weights

        load_weights(model, weights)
    return model
