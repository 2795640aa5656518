"""What each variant's literal models must show: every layer's output shape and the parameter
counts, in both frameworks' names. The models are written out by hand; ``tests/test_spec_check.py``
holds both of them to this, and the port tables (``alexnet_spec.tables``) to their real modules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer: its PyTorch module path (None where PyTorch does it inside another module or as
    a function), its Keras layer name, and its output shape per image, channels first (C, H, W) or
    (units,) as PyTorch has it; Keras holds the same map as (H, W, C)."""

    torch: str | None
    keras: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Counts:
    """Parameters PyTorch counts (``model.parameters()``), and Keras's total (``count_params()``,
    BatchNorm moving statistics included, which PyTorch keeps as buffers)."""

    torch_params: int
    keras_weights: int


# --8<-- [start:paper-shapes]
PAPER = (
    Layer("features.0", "conv1", (96, 55, 55)),  # 227 -> 55
    Layer("features.1", "conv1_relu", (96, 55, 55)),
    Layer("features.2", "norm1", (96, 55, 55)),
    Layer("features.3", "pool1", (96, 27, 27)),
    Layer("features.4", "conv2", (256, 27, 27)),
    Layer("features.5", "conv2_relu", (256, 27, 27)),
    Layer("features.6", "norm2", (256, 27, 27)),
    Layer("features.7", "pool2", (256, 13, 13)),
    Layer("features.8", "conv3", (384, 13, 13)),
    Layer("features.9", "conv3_relu", (384, 13, 13)),
    Layer("features.10", "conv4", (384, 13, 13)),
    Layer("features.11", "conv4_relu", (384, 13, 13)),
    Layer("features.12", "conv5", (256, 13, 13)),
    Layer("features.13", "conv5_relu", (256, 13, 13)),
    Layer("features.14", "pool5", (256, 6, 6)),
    Layer(None, "flatten", (9216,)),
    Layer("classifier.0", "fc1", (4096,)),
    Layer("classifier.1", "fc1_relu", (4096,)),
    Layer("classifier.2", "fc1_dropout", (4096,)),
    Layer("classifier.3", "fc2", (4096,)),
    Layer("classifier.4", "fc2_relu", (4096,)),
    Layer("classifier.5", "fc2_dropout", (4096,)),
    Layer("classifier.6", "predictions", (1000,)),
)
# --8<-- [end:paper-shapes]

CIFAR = (
    Layer("features.0", "conv1", (96, 8, 8)),  # 32 -> 8 (SAME, stride 4)
    Layer("features.1", "conv1_bn", (96, 8, 8)),
    Layer("features.2", "conv1_relu", (96, 8, 8)),
    Layer("features.3", "pool1", (96, 4, 4)),
    Layer("features.4", "conv2", (256, 4, 4)),
    Layer("features.5", "conv2_bn", (256, 4, 4)),
    Layer("features.6", "conv2_relu", (256, 4, 4)),
    Layer("features.7", "pool2", (256, 2, 2)),
    Layer("features.8", "conv3", (384, 2, 2)),
    Layer("features.9", "conv3_bn", (384, 2, 2)),
    Layer("features.10", "conv3_relu", (384, 2, 2)),
    Layer("features.11", "conv4", (384, 2, 2)),
    Layer("features.12", "conv4_bn", (384, 2, 2)),
    Layer("features.13", "conv4_relu", (384, 2, 2)),
    Layer("features.14", "conv5", (256, 2, 2)),
    Layer("features.15", "conv5_bn", (256, 2, 2)),
    Layer("features.16", "conv5_relu", (256, 2, 2)),
    Layer("features.17", "pool5", (256, 1, 1)),
    Layer(None, "flatten", (256,)),
    Layer("classifier.0", "fc1", (4096,)),
    Layer("classifier.1", "fc1_bn", (4096,)),
    Layer("classifier.2", "fc1_relu", (4096,)),
    Layer("classifier.3", "fc1_dropout", (4096,)),
    Layer("classifier.4", "fc2", (4096,)),
    Layer("classifier.5", "fc2_bn", (4096,)),
    Layer("classifier.6", "fc2_relu", (4096,)),
    Layer("classifier.7", "fc2_dropout", (4096,)),
    Layer("classifier.8", "fc3", (1000,)),
    Layer("classifier.9", "fc3_bn", (1000,)),
    Layer("classifier.10", "fc3_relu", (1000,)),
    Layer("classifier.11", "fc3_dropout", (1000,)),
    Layer("classifier.12", "predictions", (10,)),
    Layer("classifier.13", "predictions_bn", (10,)),
    Layer("classifier.14", "predictions_softmax", (10,)),
)

TORCHVISION = (
    Layer(None, "conv1_pad", (3, 228, 228)),  # PyTorch pads inside conv1
    Layer("features.0", "conv1", (64, 55, 55)),  # 224 -> 55
    Layer("features.1", "conv1_relu", (64, 55, 55)),
    Layer("features.2", "pool1", (64, 27, 27)),
    Layer("features.3", "conv2", (192, 27, 27)),
    Layer("features.4", "conv2_relu", (192, 27, 27)),
    Layer("features.5", "pool2", (192, 13, 13)),
    Layer("features.6", "conv3", (384, 13, 13)),
    Layer("features.7", "conv3_relu", (384, 13, 13)),
    Layer("features.8", "conv4", (256, 13, 13)),
    Layer("features.9", "conv4_relu", (256, 13, 13)),
    Layer("features.10", "conv5", (256, 13, 13)),
    Layer("features.11", "conv5_relu", (256, 13, 13)),
    Layer("features.12", "pool5", (256, 6, 6)),
    Layer("avgpool", "avgpool", (256, 6, 6)),
    Layer(None, "flatten", (9216,)),
    Layer("classifier.0", "fc1_dropout", (9216,)),
    Layer("classifier.1", "fc1", (4096,)),
    Layer("classifier.2", "fc1_relu", (4096,)),
    Layer("classifier.3", "fc2_dropout", (4096,)),
    Layer("classifier.4", "fc2", (4096,)),
    Layer("classifier.5", "fc2_relu", (4096,)),
    Layer("classifier.6", "predictions", (1000,)),
)

LAYERS: dict[str, tuple[Layer, ...]] = {"paper": PAPER, "cifar": CIFAR, "torchvision": TORCHVISION}

COUNTS: dict[str, Counts] = {
    "paper": Counts(torch_params=60_965_224, keras_weights=60_965_224),
    "cifar": Counts(torch_params=25_709_350, keras_weights=25_730_506),  # + 21,156 moving statistics
    "torchvision": Counts(torch_params=61_100_840, keras_weights=61_100_840),
}


def get_layers(variant: str) -> tuple[Layer, ...]:
    from alexnet_spec.variants import get_spec

    get_spec(variant)  # a clear error for an unknown name
    return LAYERS[variant]
