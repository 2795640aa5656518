"""The source document's Keras AlexNet for 32x32 images (CIFAR-10), as a functional model.

The layers, their order and their weights are the document's ``keras.Sequential``, so
``model.set_weights(document_model.get_weights())`` loads weights trained with the tutorial's code;
only the names are ours and stable (``conv1``, ``conv1_bn``, ... ``predictions_bn``).
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_keras.model import AlexNetModel
from alexnet_spec import get_spec
from alexnet_spec.variants import check_num_classes

SPEC = get_spec("cifar")


def AlexNetCifar(
    num_classes: int = SPEC.num_classes,
    *,
    logits: bool = False,
    dropout: float = SPEC.dropout,
    weights=None,
    name: str = "alexnet_cifar",
) -> AlexNetModel:
    """AlexNet with BatchNormalization for 32x32x3 (NHWC) input; 25,730,506 weights (21,156 of
    them BatchNorm moving statistics).

    Args:
        num_classes: size of the last layer (10 for CIFAR-10).
        logits: leave out the final softmax and return the last BatchNormalization's output
            (for ``from_logits=True`` losses) instead of the document's probabilities.
        dropout: dropout rate after each hidden dense layer.
        weights: None, or a ``.weights.h5`` / ``.safetensors`` file to load.
    """
    check_num_classes(num_classes)
    if not isinstance(logits, bool):
        raise TypeError(f"logits must be True or False; found {logits!r}")
    # --8<-- [start:layers]
    bn = SPEC.batchnorm

    def norm(x, name):
        return layers.BatchNormalization(epsilon=bn.epsilon, momentum=bn.momentum, name=f"{name}_bn")(x)

    inputs = keras.Input(SPEC.input_shape_nhwc, name="image")
    x = inputs
    for conv in SPEC.convs:
        x = layers.Conv2D(conv.filters, conv.kernel, strides=conv.stride, padding=conv.padding, groups=conv.groups, name=conv.name)(x)
        x = norm(x, conv.name)
        x = layers.Activation("relu", name=f"{conv.name}_relu")(x)
        if conv.pool:
            i = conv.name.removeprefix("conv")
            x = layers.MaxPooling2D(SPEC.pool_size, SPEC.pool_stride, padding=SPEC.pool_padding, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for j, units in enumerate(SPEC.hidden_units, start=1):
        x = layers.Dense(units, name=f"fc{j}")(x)
        x = norm(x, f"fc{j}")
        x = layers.Activation("relu", name=f"fc{j}_relu")(x)
        x = layers.Dropout(dropout, name=f"fc{j}_dropout")(x)
    x = layers.Dense(num_classes, name="predictions")(x)
    outputs = norm(x, "predictions")
    if not logits:
        outputs = layers.Activation("softmax", name="predictions_softmax")(outputs)
    # --8<-- [end:layers]

    model = AlexNetModel(inputs, outputs, name=name, variant="cifar", options={"logits": logits})
    if weights is not None:
        from alexnet_keras.weights import load_weights

        load_weights(model, weights)
    return model
