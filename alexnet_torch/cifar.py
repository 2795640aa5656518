"""The source document's Keras AlexNet for 32x32 images (CIFAR-10), as an idiomatic PyTorch module.

Every conv and linear layer is followed by a BatchNorm that trains as Keras's does (epsilon 1e-3,
momentum 0.99 in Keras's convention, biased running variance; see ``alexnet_torch.batchnorm``), and
convs and pools pad as TensorFlow's SAME does (``alexnet_torch.padding``). The module sequence is
the Keras layer sequence one for one, softmax included, so ``parity.compare`` can pair them.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_spec import get_spec
from alexnet_spec.variants import check_num_classes
from alexnet_torch._checks import check_input
from alexnet_torch.batchnorm import BatchNorm1dKeras, BatchNorm2dKeras
from alexnet_torch.layers import ChannelsLastOnCPU, Linear
from alexnet_torch.padding import Conv2dSame, MaxPool2dSame

SPEC = get_spec("cifar")


class AlexNetCifar(ChannelsLastOnCPU, nn.Module):
    """AlexNet with BatchNorm for 32x32 RGB input (NCHW): 25,709,350 parameters plus 21,156
    running statistics, the 25,730,506 weights Keras counts.

    Runs channels_last inside on CPU and reads its dense weights through
    ``alexnet_torch.layers.Linear``, as the paper variant does; keys and numbers are unchanged.

    Args:
        num_classes: size of the last layer (10 for CIFAR-10).
        logits: return the last BatchNorm's output (for ``nn.CrossEntropyLoss``) instead of the
            document's softmax probabilities.
        dropout: dropout rate after each hidden fully connected layer.
    """

    variant = "cifar"

    def __init__(self, num_classes: int = SPEC.num_classes, *, logits: bool = False, dropout: float = SPEC.dropout) -> None:
        super().__init__()
        check_num_classes(num_classes)
        if not isinstance(logits, bool):
            raise TypeError(f"logits must be True or False; found {logits!r}")
        # --8<-- [start:layers]
        bn = SPEC.batchnorm
        norm = dict(eps=bn.epsilon, momentum=bn.torch_momentum)
        features: list[nn.Module] = []
        in_channels = SPEC.channels
        for conv in SPEC.convs:
            features += [
                Conv2dSame(in_channels, conv.filters, conv.kernel, conv.stride, groups=conv.groups),
                BatchNorm2dKeras(conv.filters, **norm),
                nn.ReLU(inplace=True),
            ]
            if conv.pool:
                features.append(MaxPool2dSame(SPEC.pool_size, SPEC.pool_stride))
            in_channels = conv.filters
        self.features = nn.Sequential(*features)

        classifier: list[nn.Module] = []
        c, h, w = SPEC.feature_shape
        width = c * h * w
        for units in SPEC.hidden_units:
            classifier += [Linear(width, units), BatchNorm1dKeras(units, **norm), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = units
        classifier += [Linear(width, num_classes), BatchNorm1dKeras(num_classes, **norm)]
        if not logits:
            classifier.append(nn.Softmax(dim=1))
        self.classifier = nn.Sequential(*classifier)
        # --8<-- [end:layers]
        self.options = {"logits": logits}
        self.use_channels_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, SPEC, self.features[0].weight.dtype)
        x = self.features(self.fast_layout(x))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def alexnet_cifar(*, num_classes: int = SPEC.num_classes, weights=None, **options) -> AlexNetCifar:
    """The source document's Keras AlexNet for 32x32 input; ``weights`` is a checkpoint path or None."""
    from alexnet_torch.weights import load_weights

    model = AlexNetCifar(num_classes, **options)
    if weights is not None:
        load_weights(model, weights)
    return model
