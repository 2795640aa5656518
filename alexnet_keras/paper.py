"""The 2012 two-tower AlexNet in Keras 3: the source document's PyTorch class, layer for layer.

Grouped ``Conv2D`` stands for the two GPU towers; ``LocalResponseNormalization`` reproduces
PyTorch's LRN exactly. Channels last (NHWC), 227x227x3 input.
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_keras.layers import LocalResponseNormalization
from alexnet_keras.model import AlexNetModel
from alexnet_spec import LRN_FLAVOURS, lrn_flavour
from alexnet_spec.variants import check_num_classes


def _init(init: str, bias: float) -> dict:
    """Section 5 of the paper (``init="paper"``): weights N(0, 0.01) and the given bias."""
    if init == "default":
        return {}
    return {"kernel_initializer": keras.initializers.RandomNormal(0.0, 0.01), "bias_initializer": keras.initializers.Constant(bias)}


def AlexNetPaper(
    num_classes: int = 1000,
    *,
    lrn: str = "caffe",
    init: str = "default",
    dropout: float = 0.5,
    weights=None,
    name: str = "alexnet_paper",
) -> AlexNetModel:
    """AlexNet of Krizhevsky et al. (2012) for 227x227x3 (NHWC) input, 60,965,224 parameters.

    Args:
        num_classes: size of the last layer.
        lrn: ``"caffe"`` (default; the source document and Caffe's bvlc_alexnet: k=1, alpha=1e-4
            divided by the window of 5) or ``"paper"`` (section 3.3 of the paper: k=2, alpha=1e-4
            not divided). ``"document"``, the earlier name of ``"caffe"``, is accepted.
        init: ``"default"`` (Keras's Glorot uniform, zero biases) or ``"paper"`` (weights
            N(0, 0.01); biases 1 in conv2, conv4, conv5, fc1, fc2 and 0 elsewhere).
        dropout: dropout rate of the two hidden dense layers.
        weights: None, or a ``.weights.h5`` / ``.safetensors`` file to load.
    """
    check_num_classes(num_classes)
    lrn = lrn_flavour(lrn)
    if init not in ("default", "paper"):
        raise ValueError(f"init must be 'default' or 'paper'; found {init!r}")
    alpha, k = LRN_FLAVOURS[lrn].alpha, LRN_FLAVOURS[lrn].k  # PyTorch's convention: alpha / size

    inputs = keras.Input((227, 227, 3), name="image")
    # --8<-- [start:block1]
    # conv1: 227x227x3 -> 55x55x96, pool -> 27x27x96
    x = layers.Conv2D(96, 11, strides=4, padding="valid", name="conv1",
                      **_init(init, 0.0))(inputs)
    x = layers.ReLU(name="conv1_relu")(x)
    x = LocalResponseNormalization(size=5, alpha=alpha, beta=0.75, k=k,
                                   name="norm1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    # --8<-- [end:block1]
    # --8<-- [start:block2]
    # conv2 (two towers): 27 -> 27 ("same" = padding 2 at stride 1),
    # pool -> 13x13x256
    x = layers.Conv2D(256, 5, padding="same", groups=2, name="conv2",
                      **_init(init, 1.0))(x)
    x = layers.ReLU(name="conv2_relu")(x)
    x = LocalResponseNormalization(size=5, alpha=alpha, beta=0.75, k=k,
                                   name="norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    # --8<-- [end:block2]
    # --8<-- [start:block3]
    # conv3, conv4 (two towers), conv5 (two towers): 13 -> 13, pool -> 6x6x256
    x = layers.Conv2D(384, 3, padding="same", name="conv3", **_init(init, 0.0))(x)
    x = layers.ReLU(name="conv3_relu")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=2, name="conv4",
                      **_init(init, 1.0))(x)
    x = layers.ReLU(name="conv4_relu")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=2, name="conv5",
                      **_init(init, 1.0))(x)
    x = layers.ReLU(name="conv5_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    # --8<-- [end:block3]
    # --8<-- [start:classifier]
    # fc1, fc2, predictions: 6x6x256 = 9216 -> 4096 -> 4096 -> num_classes
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, name="fc1", **_init(init, 1.0))(x)
    x = layers.ReLU(name="fc1_relu")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Dense(4096, name="fc2", **_init(init, 1.0))(x)
    x = layers.ReLU(name="fc2_relu")(x)
    x = layers.Dropout(dropout, name="fc2_dropout")(x)
    outputs = layers.Dense(num_classes, name="predictions", **_init(init, 0.0))(x)
    # --8<-- [end:classifier]

    model = AlexNetModel(inputs, outputs, name=name, variant="paper", options={"lrn": lrn})
    if weights is not None:
        from alexnet_keras.weights import load_weights

        load_weights(model, weights)
    return model
