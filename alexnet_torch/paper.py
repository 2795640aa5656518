"""The 2012 two-tower AlexNet, as the source document writes it in PyTorch.

Same modules in the same order as the document's class, so its ``state_dict`` keys
(``features.0.weight`` ... ``classifier.6.bias``) load here with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_spec import LRN_FLAVOURS, get_spec
from alexnet_spec.variants import PAPER_INIT_ONE_BIAS, PAPER_INIT_STD, check_num_classes
from alexnet_torch._checks import check_input
from alexnet_torch.layers import ChannelsLastOnCPU, Linear, LocalResponseNorm

SPEC = get_spec("paper")


class AlexNetPaper(ChannelsLastOnCPU, nn.Module):
    """AlexNet of Krizhevsky et al. (2012) for 227x227 RGB input.

    Runs in channels_last memory on CPU whatever the input's layout, with faster but exact
    ``LocalResponseNorm`` and ``Linear`` modules (see ``alexnet_torch.layers``); shapes, keys and
    results are the document's.

    Args:
        num_classes: size of the last layer.
        lrn: ``"document"`` (default; the source document and Caffe: k=1, alpha=1e-4 divided by
            the window of 5) or ``"paper"`` (the 2012 paper: k=2, alpha=1e-4 not divided).
        init: ``"default"`` (PyTorch's initialization) or ``"paper"`` (weights N(0, 0.01); biases 1
            in conv2, conv4, conv5, fc1, fc2 and 0 elsewhere).
        dropout: dropout rate of the two hidden fully connected layers.
    """

    variant = "paper"

    def __init__(
        self,
        num_classes: int = SPEC.num_classes,
        *,
        lrn: str = "document",
        init: str = "default",
        dropout: float = SPEC.dropout,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        if lrn not in LRN_FLAVOURS:
            raise ValueError(f"lrn must be one of {sorted(LRN_FLAVOURS)}; found {lrn!r}")
        if init not in ("default", "paper"):
            raise ValueError(f"init must be 'default' or 'paper'; found {init!r}")
        norm = LRN_FLAVOURS[lrn]
        # --8<-- [start:layers]
        features: list[nn.Module] = []
        in_channels = SPEC.channels
        for conv in SPEC.convs:
            features += [
                nn.Conv2d(in_channels, conv.filters, conv.kernel, conv.stride, conv.padding, groups=conv.groups),
                nn.ReLU(inplace=True),
            ]
            if conv.lrn:
                features.append(LocalResponseNorm(norm.size, norm.alpha, norm.beta, norm.k, inplace=True))
            if conv.pool:
                features.append(nn.MaxPool2d(SPEC.pool_size, SPEC.pool_stride))
            in_channels = conv.filters
        self.features = nn.Sequential(*features)

        classifier: list[nn.Module] = []
        width = SPEC.feature_shape[0] * SPEC.feature_shape[1] * SPEC.feature_shape[2]
        for units in SPEC.hidden_units:
            classifier += [Linear(width, units), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = units
        classifier.append(Linear(width, num_classes))
        self.classifier = nn.Sequential(*classifier)
        # --8<-- [end:layers]

        self.options = {"lrn": lrn}
        if init == "paper":
            paper_init(self)
        self.use_channels_last()

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, SPEC, self.features[0].weight.dtype)
        x = self.features(self.fast_layout(x))
        x = torch.flatten(x, 1)  # not x.view(): works on channels_last tensors too
        return self.classifier(x)
    # --8<-- [end:forward]


@torch.no_grad()
def paper_init(model: nn.Module) -> nn.Module:
    """Section 5 of the paper: weights N(0, 0.01), biases 1 in the layers it names, else 0."""
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for name, module in zip(SPEC.weighted_layers, weighted, strict=True):
        nn.init.normal_(module.weight, 0.0, PAPER_INIT_STD)
        nn.init.constant_(module.bias, 1.0 if name in PAPER_INIT_ONE_BIAS else 0.0)
    return model


def alexnet_paper(*, num_classes: int = SPEC.num_classes, weights=None, **options) -> AlexNetPaper:
    """The source document's AlexNet (227x227 input); ``weights`` is a checkpoint path or None."""
    from alexnet_torch.weights import load_weights

    model = AlexNetPaper(num_classes, **options)
    if weights is not None:
        load_weights(model, weights)
    return model
