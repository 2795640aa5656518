"""torchvision's ImageNet AlexNet for Keras 3, in the conventions of ``keras.applications``.

Layer for layer the network of ``torchvision.models.AlexNet`` (the "One weird trick" AlexNet), so
torchvision's pretrained weights port to it and ``parity.compare`` pairs every layer: conv1's
symmetric padding of 2 is a ``ZeroPadding2D`` (Keras's ``"same"`` would pad 3 and 4 at stride 4),
``AdaptiveAveragePooling2D`` uses PyTorch's bin edges, and Dropout precedes each hidden Dense layer.

Weights: ``"imagenet"`` reads the converted file from the Keras cache (``$KERAS_HOME/models``);
``alexnet-parity port --variant torchvision --weights IMAGENET1K_V1 FILE`` creates it once from
torchvision's checkpoint. Loading needs no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from alexnet_keras.model import AlexNetModel
from alexnet_spec import get_spec
from alexnet_spec.variants import check_num_classes
from alexnet_spec.imagenet import IMAGENET1K_V1, keras_cache_dir

SPEC = get_spec("torchvision")
WEIGHTS = IMAGENET1K_V1


def _input_shape(input_shape, include_top: bool) -> tuple:
    minimum = SPEC.min_input_size
    if input_shape is None:
        return SPEC.input_shape_nhwc if include_top else (None, None, SPEC.channels)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != SPEC.channels:
        raise ValueError(
            f"input_shape must be (height, width, {SPEC.channels}) (channels last); found {input_shape}"
        )
    h, w = input_shape[:2]
    if include_top and None in (h, w):
        raise ValueError(
            f"include_top=True needs a known height and width (the adaptive pooling is computed for "
            f"one size); found input_shape={input_shape}. Give both, e.g. (224, 224, 3)."
        )
    if any(s is not None and s < minimum for s in (h, w)):
        raise ValueError(
            f"input_shape {input_shape} is too small: AlexNet needs at least {minimum}x{minimum} "
            f"(smaller inputs vanish before pool5)."
        )
    return input_shape


def AlexNet(
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = SPEC.num_classes,
    classifier_activation="softmax",
    name: str = "alexnet",
    *,
    dropout: float = 0.5,
) -> AlexNetModel:
    """Instantiates torchvision's AlexNet (ImageNet-1K, 224x224x3 channels-last input).

    Args:
        include_top: whether to include the average pooling and the 3 fully connected layers.
        weights: ``None`` (random initialization), ``"imagenet"`` (torchvision's IMAGENET1K_V1,
            converted once with ``alexnet-parity port``; acc@1 56.522, acc@5 79.066), or the path
            to a ``.safetensors`` or ``.weights.h5`` file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 3)``, each side at least 63; default ``(224, 224, 3)``, or
            ``(None, None, 3)`` when ``include_top=False``.
        pooling: with ``include_top=False``: ``None`` (the 4D output of pool5), ``"avg"`` or
            ``"max"`` (global pooling to a 2D tensor).
        classes: number of classes (1000 with ``weights="imagenet"``).
        classifier_activation: activation of the ``predictions`` layer; ``None`` returns logits,
            as torchvision's model does. With pretrained weights only ``None`` or ``"softmax"``.
        name: the model's name.
        dropout: rate of the two Dropout layers (torchvision's ``dropout``).

    Inputs are preprocessed with ``alexnet_keras.preprocess_input`` (torchvision's mean/std).
    """
    if not (weights in (None, "imagenet") or Path(weights).is_file()):
        raise ValueError(
            "weights must be None (random initialization), 'imagenet' (the converted torchvision "
            f"weights), or the path to a .safetensors / .weights.h5 file; found {weights!r}, which is "
            "not an existing file."
        )
    if include_top:
        check_num_classes(classes)
    if weights == "imagenet" and include_top and classes != SPEC.num_classes:
        raise ValueError(
            f"weights='imagenet' with include_top=True has {SPEC.num_classes} classes; found classes={classes}. "
            "Use include_top=False and add your own classifier to fine-tune."
        )
    if weights is not None and classifier_activation not in (None, "softmax"):
        raise ValueError(
            "with pretrained weights, classifier_activation must be None (logits) or 'softmax'; found "
            f"{classifier_activation!r}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'; found {pooling!r}")

    shape = _input_shape(input_shape, include_top)
    if input_tensor is None:
        img_input = layers.Input(shape=shape, name="image")
    elif not keras.backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=shape, name="image")
    else:
        img_input = input_tensor

    x = img_input
    # --8<-- [start:block1]
    # conv1: 224x224x3 -> 55x55x64 (padding 2 on every side, as PyTorch's),
    # pool -> 27x27x64
    x = layers.ZeroPadding2D(2, name="conv1_pad")(x)
    x = layers.Conv2D(64, 11, strides=4, padding="valid", name="conv1")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    # --8<-- [end:block1]
    # --8<-- [start:block2]
    # conv2: 27 -> 27 ("same" = padding 2 at stride 1), pool -> 13x13x192
    x = layers.Conv2D(192, 5, padding="same", name="conv2")(x)
    x = layers.ReLU(name="conv2_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    # --8<-- [end:block2]
    # --8<-- [start:block3]
    # conv3, conv4, conv5: 13 -> 13, pool -> 6x6x256
    x = layers.Conv2D(384, 3, padding="same", name="conv3")(x)
    x = layers.ReLU(name="conv3_relu")(x)
    x = layers.Conv2D(256, 3, padding="same", name="conv4")(x)
    x = layers.ReLU(name="conv4_relu")(x)
    x = layers.Conv2D(256, 3, padding="same", name="conv5")(x)
    x = layers.ReLU(name="conv5_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    # --8<-- [end:block3]

    if include_top:
        x = _repeat_single_pixel_axes(x)  # inputs of 63 to 94 pixels: see the function
        # --8<-- [start:classifier]
        # avgpool to 6x6 (any input of at least 63x63),
        # fc1, fc2, predictions: 9216 -> 4096 -> 4096 -> classes
        x = layers.AdaptiveAveragePooling2D((6, 6), name="avgpool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="fc1_dropout")(x)
        x = layers.Dense(4096, name="fc1")(x)
        x = layers.ReLU(name="fc1_relu")(x)
        x = layers.Dropout(dropout, name="fc2_dropout")(x)
        x = layers.Dense(4096, name="fc2")(x)
        x = layers.ReLU(name="fc2_relu")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
        # --8<-- [end:classifier]
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = AlexNetModel(inputs, x, name=name, variant="torchvision")
    if weights == "imagenet":
        load_imagenet_weights(model)
    elif weights is not None:
        load_into(model, weights)
    return model


def imagenet_weights_path() -> Path:
    return keras_cache_dir() / WEIGHTS.converted_name


def load_imagenet_weights(model: keras.Model) -> keras.Model:
    """Load the converted IMAGENET1K_V1 file from the Keras cache, verifying its checksum."""
    from alexnet_spec import checksum

    path = imagenet_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"the ImageNet weights for Keras are not in the Keras cache: {path} does not exist. "
            "Create it once (needs torch, torchvision and network; Keras-only installs then load "
            f"it without torch):\n    {WEIGHTS.port_command(path)}\n"
            "or pass weights='path/to/converted.safetensors'. (The cache is $KERAS_HOME/models, "
            "else ~/.keras/models.)"
        )
    checksum.require_sidecar(path)  # the hash itself is checked once, by the loader
    return load_into(model, path)


def load_into(model: keras.Model, path: str | os.PathLike) -> keras.Model:
    """Load a weight file; a model without its top takes the convolution weights only
    (from ``.safetensors``, which holds every weight by name)."""
    from alexnet_keras.weights import expected_shapes, load_weights, set_layer_weights

    if any(layer.name == "predictions" for layer in model.layers):
        return load_weights(model, path)
    from alexnet_spec import exchange
    from alexnet_spec.port import torch_to_keras
    from alexnet_spec.tables import get_table

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path}: a model built with include_top=False loads .safetensors files only (they name each "
            "weight); convert yours with `alexnet-parity port FILE out.safetensors`."
        )
    ex = exchange.load(path, "torchvision")
    weights = torch_to_keras(get_table(ex.variant), ex.state, expected_shapes(model))
    present = {layer.name for layer in model.layers}
    return set_layer_weights(model, {n: w for n, w in weights.items() if n in present})


def alexnet_torchvision(
    num_classes: int = SPEC.num_classes,
    *,
    weights=None,
    classifier_activation=None,
    name: str = "alexnet_torchvision",
    **kwargs,
) -> AlexNetModel:
    """``build("torchvision")``: :func:`AlexNet` returning logits by default, as torchvision's model
    does, so that parity compares like with like. Pass ``classifier_activation="softmax"`` for
    probabilities."""
    return AlexNet(
        weights=weights, classes=num_classes, classifier_activation=classifier_activation, name=name, **kwargs
    )


def _repeat_single_pixel_axes(x):
    """pool5's map repeated to 6 along an axis where it is 1 pixel (inputs of 63 to 94 pixels).

    PyTorch's adaptive pooling repeats that pixel into all 6 bins, and after the repeat Keras's
    ``AdaptiveAveragePooling2D`` has one pixel per bin: the same numbers. Without it Keras 3.15's
    layer fails in a compiled function (``predict``, a traced call, export) with a pooling
    window of 2 over the 1 pixel; called eagerly it works.
    """
    h, w = x.shape[1:3]
    if 1 not in (h, w):
        return x
    return layers.UpSampling2D((6 if h == 1 else 1, 6 if w == 1 else 1), name="avgpool_repeat")(x)
