"""The source document's Keras AlexNet for 32x32 images (CIFAR-10), as a PyTorch module.

Every conv and linear layer is followed by a BatchNorm that trains as Keras's does (epsilon 1e-3,
momentum 0.99 in Keras's convention, biased running variance; see ``alexnet_torch.batchnorm``), and
convs and pools pad as TensorFlow's SAME does (``alexnet_torch.padding``). The module sequence is
the Keras layer sequence one for one, softmax included, so ``parity.compare`` can pair them.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_spec.variants import check_num_classes
from alexnet_torch import _checks
from alexnet_torch.batchnorm import BatchNorm1dKeras, BatchNorm2dKeras
from alexnet_torch.padding import Conv2dSame, MaxPool2dSame

# Keras's BatchNormalization defaults, in PyTorch's terms: momentum 0.99 of the old statistic is
# 0.01 of the new batch here (the spec's CIFAR.batchnorm; tests/test_cifar_models.py holds them to it).
BN = dict(eps=1e-3, momentum=0.01)


class AlexNetCifar(nn.Module):
    """AlexNet with BatchNorm for 32x32 RGB input (NCHW): 25,709,350 parameters plus 21,156
    running statistics, the 25,730,506 weights Keras counts.

    Args:
        num_classes: size of the last layer (10 for CIFAR-10).
        logits: return the last BatchNorm's output (for ``nn.CrossEntropyLoss``) instead of the
            document's softmax probabilities.
        dropout: dropout rate after each hidden fully connected layer.
    """

    variant = "cifar"

    def __init__(self, num_classes: int = 10, *, logits: bool = False, dropout: float = 0.4) -> None:
        super().__init__()
        check_num_classes(num_classes)
        if not isinstance(logits, bool):
            raise TypeError(f"logits must be True or False; found {logits!r}")
        self.features = nn.Sequential(
            # --8<-- [start:block1]
            # conv1: 3x32x32 -> 96x8x8 (SAME at stride 4 pads 3 before, 4 after),
            # pool -> 96x4x4
            Conv2dSame(3, 96, kernel_size=11, stride=4),
            BatchNorm2dKeras(96, **BN),
            nn.ReLU(inplace=True),
            MaxPool2dSame(kernel_size=2, stride=2),
            # --8<-- [end:block1]
            # --8<-- [start:block2]
            # conv2: 4 -> 4, pool -> 256x2x2
            Conv2dSame(96, 256, kernel_size=5),
            BatchNorm2dKeras(256, **BN),
            nn.ReLU(inplace=True),
            MaxPool2dSame(kernel_size=2, stride=2),
            # --8<-- [end:block2]
            # --8<-- [start:block3]
            # conv3, conv4, conv5: 2 -> 2, pool -> 256x1x1
            Conv2dSame(256, 384, kernel_size=3),
            BatchNorm2dKeras(384, **BN),
            nn.ReLU(inplace=True),
            Conv2dSame(384, 384, kernel_size=3),
            BatchNorm2dKeras(384, **BN),
            nn.ReLU(inplace=True),
            Conv2dSame(384, 256, kernel_size=3),
            BatchNorm2dKeras(256, **BN),
            nn.ReLU(inplace=True),
            MaxPool2dSame(kernel_size=2, stride=2),
            # --8<-- [end:block3]
        )
        self.classifier = nn.Sequential(
            # --8<-- [start:classifier]
            # fc1, fc2, fc3, predictions: 256 -> 4096 -> 4096 -> 1000 -> num_classes
            nn.Linear(256 * 1 * 1, 4096),
            BatchNorm1dKeras(4096, **BN),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            BatchNorm1dKeras(4096, **BN),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 1000),
            BatchNorm1dKeras(1000, **BN),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(1000, num_classes),
            BatchNorm1dKeras(num_classes, **BN),
            *([] if logits else [nn.Softmax(dim=1)]),
            # --8<-- [end:classifier]
        )
        self.options = {"logits": logits}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _checks.check_variant_input(x, "cifar", self.features[0].weight.dtype)
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def alexnet_cifar(*, num_classes: int = 10, weights=None, **options) -> AlexNetCifar:
    """The source document's Keras AlexNet for 32x32 input; ``weights`` is a checkpoint path or None."""
    from alexnet_torch.weights import load_weights

    model = AlexNetCifar(num_classes, **options)
    if weights is not None:
        load_weights(model, weights)
    return model
