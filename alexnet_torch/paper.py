"""The 2012 two-tower AlexNet, as the source document writes it in PyTorch.

The same modules in the same order as the document's class, so its ``state_dict`` keys
(``features.0.weight`` ... ``classifier.6.bias``) load here with ``strict=True``. Plain PyTorch
modules only: ``torch.jit.script``, ``torch.fx``, ``torch.export`` and both ONNX exporters take it
as it is. The faster CPU path is opt-in: ``alexnet_torch.optimize(model)``.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_spec import LRN_FLAVOURS, lrn_flavour
from alexnet_spec.variants import check_num_classes
from alexnet_torch import _checks


class AlexNetPaper(nn.Module):
    """AlexNet of Krizhevsky et al. (2012) for 227x227 RGB input (NCHW), 60,965,224 parameters.

    Args:
        num_classes: size of the last layer.
        lrn: ``"caffe"`` (default; the source document and Caffe's bvlc_alexnet: k=1, alpha=1e-4
            divided by the window of 5) or ``"paper"`` (section 3.3 of the paper: k=2, alpha=1e-4
            not divided). ``"document"``, the earlier name of ``"caffe"``, is accepted.
        init: ``"default"`` (PyTorch's initialization) or ``"paper"`` (weights N(0, 0.01); biases 1
            in conv2, conv4, conv5, fc1, fc2 and 0 elsewhere).
        dropout: dropout rate of the two hidden fully connected layers.
    """

    variant = "paper"

    def __init__(self, num_classes: int = 1000, *, lrn: str = "caffe", init: str = "default", dropout: float = 0.5) -> None:
        super().__init__()
        check_num_classes(num_classes)
        lrn = lrn_flavour(lrn)
        if init not in ("default", "paper"):
            raise ValueError(f"init must be 'default' or 'paper'; found {init!r}")
        alpha, k = LRN_FLAVOURS[lrn].alpha, LRN_FLAVOURS[lrn].k  # PyTorch's convention: alpha / size
        self.features = nn.Sequential(
            # --8<-- [start:block1]
            # conv1: 3x227x227 -> 96x55x55, pool -> 96x27x27
            nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=0),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=alpha, beta=0.75, k=k),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # --8<-- [end:block1]
            # --8<-- [start:block2]
            # conv2 (two towers): 27 -> 27, pool -> 256x13x13
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=alpha, beta=0.75, k=k),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # --8<-- [end:block2]
            # --8<-- [start:block3]
            # conv3, conv4 (two towers), conv5 (two towers): 13 -> 13, pool -> 256x6x6
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # --8<-- [end:block3]
        )
        self.classifier = nn.Sequential(
            # --8<-- [start:classifier]
            # fc1, fc2, predictions: 9216 -> 4096 -> 4096 -> num_classes
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
            # --8<-- [end:classifier]
        )
        self.options = {"lrn": lrn}
        if init == "paper":
            paper_init(self)

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            # says what to do with a 224x224 or NHWC batch
            _checks.check_variant_input(x, "paper", self.features[0].weight.dtype)
        x = self.features(x)
        x = torch.flatten(x, 1)  # the document's x.view(x.size(0), 256 * 6 * 6)
        x = self.classifier(x)
        return x
    # --8<-- [end:forward]


@torch.no_grad()
def paper_init(model: AlexNetPaper) -> AlexNetPaper:
    """Section 5 of the paper: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc1, fc2, else 0."""
    f, c = model.features, model.classifier
    for layer, bias in ((f[0], 0.0), (f[4], 1.0), (f[8], 0.0), (f[10], 1.0), (f[12], 1.0), (c[0], 1.0), (c[3], 1.0), (c[6], 0.0)):
        nn.init.normal_(layer.weight, 0.0, 0.01)
        nn.init.constant_(layer.bias, bias)
    return model


def alexnet_paper(*, num_classes: int = 1000, weights=None, **options) -> AlexNetPaper:
    """The source document's AlexNet (227x227 input); ``weights`` is a checkpoint path or None."""
    from alexnet_torch.weights import load_weights

    model = AlexNetPaper(num_classes, **options)
    if weights is not None:
        load_weights(model, weights)
    return model
