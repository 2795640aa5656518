"""The source document's Keras AlexNet for 32x32 images (CIFAR-10), as a functional model.

The layers, their order and their weights are the document's ``keras.Sequential``, so
``model.set_weights(document_model.get_weights())`` loads weights trained with the tutorial's code;
only the names are ours and stable (``conv1``, ``conv1_bn``, ... ``predictions_bn``).
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_keras.model import AlexNetModel
from alexnet_spec.variants import check_num_classes

# The document's layers use Keras's BatchNormalization defaults: epsilon 1e-3, momentum 0.99
# (the spec's CIFAR.batchnorm; tests/test_cifar_models.py holds every layer to it).


def AlexNetCifar(
    num_classes: int = 10,
    *,
    logits: bool = False,
    dropout: float = 0.4,
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

    inputs = keras.Input((32, 32, 3), name="image")
    # --8<-- [start:block1]
    # conv1: 32x32x3 -> 8x8x96 (SAME at stride 4 pads 3 before, 4 after),
    # pool -> 4x4x96
    x = layers.Conv2D(96, 11, strides=4, padding="same", name="conv1")(inputs)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.MaxPooling2D(2, strides=2, padding="same", name="pool1")(x)
    # --8<-- [end:block1]
    # --8<-- [start:block2]
    # conv2: 4 -> 4, pool -> 2x2x256
    x = layers.Conv2D(256, 5, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="conv2_bn")(x)
    x = layers.Activation("relu", name="conv2_relu")(x)
    x = layers.MaxPooling2D(2, strides=2, padding="same", name="pool2")(x)
    # --8<-- [end:block2]
    # --8<-- [start:block3]
    # conv3, conv4, conv5: 2 -> 2, pool -> 1x1x256
    x = layers.Conv2D(384, 3, padding="same", name="conv3")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="conv3_bn")(x)
    x = layers.Activation("relu", name="conv3_relu")(x)
    x = layers.Conv2D(384, 3, padding="same", name="conv4")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="conv4_bn")(x)
    x = layers.Activation("relu", name="conv4_relu")(x)
    x = layers.Conv2D(256, 3, padding="same", name="conv5")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="conv5_bn")(x)
    x = layers.Activation("relu", name="conv5_relu")(x)
    x = layers.MaxPooling2D(2, strides=2, padding="same", name="pool5")(x)
    # --8<-- [end:block3]
    # --8<-- [start:classifier]
    # fc1, fc2, fc3, predictions: 1x1x256 = 256 -> 4096 -> 4096 -> 1000 -> num_classes
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, name="fc1")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="fc1_bn")(x)
    x = layers.Activation("relu", name="fc1_relu")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Dense(4096, name="fc2")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="fc2_bn")(x)
    x = layers.Activation("relu", name="fc2_relu")(x)
    x = layers.Dropout(dropout, name="fc2_dropout")(x)
    x = layers.Dense(1000, name="fc3")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="fc3_bn")(x)
    x = layers.Activation("relu", name="fc3_relu")(x)
    x = layers.Dropout(dropout, name="fc3_dropout")(x)
    x = layers.Dense(num_classes, name="predictions")(x)
    outputs = layers.BatchNormalization(epsilon=1e-3, momentum=0.99,
                                        name="predictions_bn")(x)
    if not logits:
        outputs = layers.Activation("softmax", name="predictions_softmax")(outputs)
    # --8<-- [end:classifier]

    model = AlexNetModel(inputs, outputs, name=name, variant="cifar", options={"logits": logits})
    if weights is not None:
        from alexnet_keras.weights import load_weights

        load_weights(model, weights)
    return model
