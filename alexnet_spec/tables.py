"""Port tables: which PyTorch parameter is which Keras weight, and how its layout changes.

A table is data, one per variant; ``alexnet_spec.port`` is the one engine that reads them, in both
directions. Adding a variant adds a table here.
"""

from __future__ import annotations

from dataclasses import dataclass

from alexnet_spec.variants import VARIANTS, get_spec

# Parameter names of each kind of layer, in the order each framework stores them.
TORCH_PARAMS: dict[str, tuple[str, ...]] = {
    "conv": ("weight", "bias"),
    "dense": ("weight", "bias"),
    "batchnorm": ("weight", "bias", "running_mean", "running_var"),
}
KERAS_WEIGHTS: dict[str, tuple[str, ...]] = {
    "conv": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batchnorm": ("gamma", "beta", "moving_mean", "moving_variance"),
}
# Buffers PyTorch keeps that have no Keras counterpart: accepted when present, never required.
TORCH_ONLY: dict[str, tuple[str, ...]] = {"batchnorm": ("num_batches_tracked",)}


@dataclass(frozen=True)
class Entry:
    """One layer with weights. ``flatten_from`` is the (C, H, W) feature map a dense layer reads
    right after the convolutions: PyTorch flattens it as C,H,W and Keras as H,W,C."""

    torch: str
    keras: str
    kind: str
    flatten_from: tuple[int, int, int] | None = None

    def torch_keys(self) -> tuple[str, ...]:
        return tuple(f"{self.torch}.{p}" for p in TORCH_PARAMS[self.kind])

    def torch_only_keys(self) -> tuple[str, ...]:
        return tuple(f"{self.torch}.{p}" for p in TORCH_ONLY.get(self.kind, ()))

    def keras_names(self) -> tuple[str, ...]:
        return tuple(f"{self.keras}/{w}" for w in KERAS_WEIGHTS[self.kind])


@dataclass(frozen=True)
class PortTable:
    variant: str
    entries: tuple[Entry, ...]

    def torch_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entries for k in e.torch_keys())

    def torch_only_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entries for k in e.torch_only_keys())

    def keras_layers(self) -> tuple[str, ...]:
        return tuple(e.keras for e in self.entries)

    @property
    def output(self) -> Entry:
        return self.entries[-1]


_PAPER_FEATURE_SHAPE = get_spec("paper").feature_shape

# --8<-- [start:paper-table]
PAPER = PortTable(
    "paper",
    (
        Entry("features.0", "conv1", "conv"),
        Entry("features.4", "conv2", "conv"),
        Entry("features.8", "conv3", "conv"),
        Entry("features.10", "conv4", "conv"),
        Entry("features.12", "conv5", "conv"),
        Entry("classifier.0", "fc1", "dense", flatten_from=_PAPER_FEATURE_SHAPE),
        Entry("classifier.3", "fc2", "dense"),
        Entry("classifier.6", "predictions", "dense"),
    ),
)
# --8<-- [end:paper-table]

_CIFAR_FEATURE_SHAPE = get_spec("cifar").feature_shape

# The document's Keras network; torch indices are those of alexnet_torch.cifar's Sequentials.
CIFAR = PortTable(
    "cifar",
    (
        Entry("features.0", "conv1", "conv"),
        Entry("features.1", "conv1_bn", "batchnorm"),
        Entry("features.4", "conv2", "conv"),
        Entry("features.5", "conv2_bn", "batchnorm"),
        Entry("features.8", "conv3", "conv"),
        Entry("features.9", "conv3_bn", "batchnorm"),
        Entry("features.11", "conv4", "conv"),
        Entry("features.12", "conv4_bn", "batchnorm"),
        Entry("features.14", "conv5", "conv"),
        Entry("features.15", "conv5_bn", "batchnorm"),
        Entry("classifier.0", "fc1", "dense", flatten_from=_CIFAR_FEATURE_SHAPE),
        Entry("classifier.1", "fc1_bn", "batchnorm"),
        Entry("classifier.4", "fc2", "dense"),
        Entry("classifier.5", "fc2_bn", "batchnorm"),
        Entry("classifier.8", "fc3", "dense"),
        Entry("classifier.9", "fc3_bn", "batchnorm"),
        Entry("classifier.12", "predictions", "dense"),
        Entry("classifier.13", "predictions_bn", "batchnorm"),
    ),
)

# torchvision's key names: Dropout comes first in its classifier, so the Linears are 1, 4, 6.
TORCHVISION = PortTable(
    "torchvision",
    (
        Entry("features.0", "conv1", "conv"),
        Entry("features.3", "conv2", "conv"),
        Entry("features.6", "conv3", "conv"),
        Entry("features.8", "conv4", "conv"),
        Entry("features.10", "conv5", "conv"),
        Entry("classifier.1", "fc1", "dense", flatten_from=get_spec("torchvision").feature_shape),
        Entry("classifier.4", "fc2", "dense"),
        Entry("classifier.6", "predictions", "dense"),
    ),
)

_TABLES: dict[str, PortTable] = {"paper": PAPER, "cifar": CIFAR, "torchvision": TORCHVISION}


def get_table(variant: str) -> PortTable:
    get_spec(variant)  # a clear error for an unknown name
    try:
        return _TABLES[variant]
    except KeyError:
        raise ValueError(f"variant {variant!r} has no port table yet") from None


def all_tables() -> tuple[PortTable, ...]:
    return tuple(_TABLES[v] for v in VARIANTS if v in _TABLES)
