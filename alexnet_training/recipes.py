"""Training recipes as data: what both frameworks' training loops read, with numpy only.

A recipe is the optimizer, the learning-rate schedule, the augmentation and the test-time crops;
each names its source and every place where this project departs from it. Both
``alexnet_torch.training`` and ``alexnet_keras.training`` take their numbers from here, and
:func:`learning_rate` is the one schedule both call at the start of every epoch.

Weight decay is applied the way Keras's ``SGD(weight_decay=...)`` does it, decoupled
(``w -= lr * wd * w`` before the gradient step, outside the momentum), in both frameworks: PyTorch
trains with ``alexnet_torch.optim.DecoupledSGD`` rather than ``torch.optim.SGD(weight_decay=...)``,
which adds ``wd * w`` to the gradient and so runs it through the momentum (see ``parity.steps``). With
momentum 0.9 the two differ after the first step; this is a deviation from the paper and from
torchvision's recipe, named in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from alexnet_spec.imagenet import MEAN as IMAGENET_MEAN
from alexnet_spec.imagenet import STD as IMAGENET_STD
from alexnet_spec.imagenet import resize_size_for
from alexnet_training.images import CAFFE_CROP, CAFFE_MEAN_BGR, CAFFE_RESIZE

# ImageNet RGB PCA on [0, 1] values, as fb.resnet.torch's Lighting transform uses them.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Augment:
    """One sample's way from a stored image (uint8 HWC) to the network's float32 input.

    ``crop``: the network's input side; None: whichever network trains, with ``resize`` ImageNet's
    256/224 of it (:func:`for_network` makes it concrete: 224 and 256, 227 and 259, 32 and 37).
    ``resize``: shorter side to this many pixels first (None: keep; with ``random_resized``, at test
    time only, as torchvision's eval transform); ``square``: then center-crop a
    square of that side (the paper's 256x256 images); ``pad``: zero-pad each side (CIFAR-style
    random crops); ``scale``/``ratio``: with ``random_resized``,
    torchvision's RandomResizedCrop; ``flip``: horizontal reflection with probability 0.5;
    ``lighting``: std of the PCA colour noise (0: none); ``mean``/``std``: per-channel
    normalization, ``(x - mean) / std``, of values in [0, ``max_value``] in the network's channel
    order.

    Caffe's input (:data:`CAFFE_TEST`): ``stretch`` resizes to ``resize`` x ``resize`` without keeping
    the aspect ratio (OpenCV's bilinear, as Caffe's convert_imageset); ``bgr`` reverses the channels;
    ``max_value=255`` keeps 0..255 values, so ``mean`` is Caffe's BGR mean and ``std`` 1.
    """

    crop: int | None
    resize: int | None = None
    square: bool = False
    pad: int = 0
    random_resized: bool = False
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    lighting: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    stretch: bool = False
    bgr: bool = False
    max_value: float = 1.0


# --8<-- [start:caffe-test]
# Caffe's bvlc_alexnet at test time: 256x256 (aspect not kept), center 227 or the 10 crops of
# caffe.io.oversample (corners, center, mirrored), BGR, 0..255, mean 104/117/123 subtracted. What
# `alexnet-eval --preprocessing caffe` reads (auto: for Caffe's weights); the same numbers as
# alexnet_training.images.caffe_input and caffe_oversample.
CAFFE_TEST = Augment(crop=CAFFE_CROP, resize=CAFFE_RESIZE, stretch=True, flip=False, bgr=True, max_value=255.0,
                     mean=CAFFE_MEAN_BGR, std=(1.0, 1.0, 1.0))
# --8<-- [end:caffe-test]


@dataclass(frozen=True)
class Recipe:
    name: str
    variant: str  # the network the recipe was written for
    lr: float
    momentum: float
    weight_decay: float  # decoupled in both frameworks (module docstring)
    batch_size: int
    epochs: int
    schedule: str  # "step": lr * gamma ** (epoch // step); "plateau": lr * gamma per `patience` epochs without a better val_top1
    step: int = 30
    gamma: float = 0.1
    patience: int = 5
    init: str = "framework"  # "paper": N(0, 0.01), biases 1 in conv2/4/5 and fc1/2; else each framework's default
    augment: Augment = field(default_factory=lambda: Augment(crop=224))
    test_crops: str = "center"  # "center" or "10crop": what the recipe's own numbers use
    precise_bn: int = 0  # training samples BatchNorm's moving statistics are recomputed over before each evaluation (0: off; alexnet_training.precise_bn)
    source: str = ""
    deviations: tuple[str, ...] = ()
    accuracy: str = ""  # what the recipe reaches, and whether it is measured here or cited


# --8<-- [start:recipes]
PAPER = Recipe(
    name="paper",
    variant="paper",
    lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128, epochs=90,
    schedule="plateau", gamma=0.1, patience=5,
    init="paper",
    augment=Augment(crop=227, resize=256, square=True, flip=True, lighting=0.1),
    test_crops="10crop",
    source="Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural "
           "Networks, sections 4.1 (augmentation, 10-crop test) and 5 (SGD, initialization)",
    deviations=(
        "227x227 random crops instead of the paper's 224: this network's conv1 has no padding, so only "
        "227 reaches the 6x6x256 map its classifier reads (Caffe's bvlc_alexnet also uses 227).",
        "The paper divided lr by 10 'when the validation error rate stopped improving' (three times, by "
        "hand); here after `patience` epochs without a better val_top1.",
        "Weight decay is decoupled (Keras's SGD), not added to the gradient before the momentum as in "
        "the paper's update rule.",
        "Inputs are normalized by ImageNet's per-channel mean and std instead of subtracting the mean "
        "image.",
        "One GPU's worth of model: the two-tower layout is kept as grouped convolutions.",
    ),
    accuracy="cited: 40.7% top-1 / 18.2% top-5 error on ILSVRC-2012 val, one network, 10 crops "
             "(paper, table 2); not measured here (ImageNet does not fit this machine).",
)

TORCHVISION = Recipe(
    name="torchvision",
    variant="torchvision",
    lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=256, epochs=90,
    schedule="step", step=30, gamma=0.1,
    augment=Augment(crop=224, resize=256, random_resized=True, flip=True),  # resize: eval only
    test_crops="center",
    source="pytorch/vision references/classification: README 'AlexNet and VGG' (--lr 1e-2, 8 GPUs) "
           "and train.py defaults (epochs 90, momentum 0.9, wd 1e-4, StepLR step 30 gamma 0.1, "
           "batch 32 per GPU; RandomResizedCrop 224 + flip; eval resize 256, center crop 224)",
    deviations=(
        "batch_size 256 is the reference's total batch (32 per GPU x 8 GPUs) on one device.",
        "Weight decay is decoupled (Keras's SGD), not torch.optim.SGD's coupled weight_decay.",
    ),
    accuracy="cited: torchvision IMAGENET1K_V1 acc@1 56.522, acc@5 79.066 (center crop); not measured here.",
)

CIFAR = Recipe(
    name="cifar",
    variant="cifar",
    lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128, epochs=30,
    schedule="step", step=10, gamma=0.1,
    augment=Augment(crop=32, pad=4, flip=True, mean=CIFAR10_MEAN, std=CIFAR10_STD),
    test_crops="center",
    precise_bn=8192,
    source="this project: the source document's network ships no training recipe; the augmentation is "
           "the standard CIFAR-10 one (zero-pad 4, random 32x32 crop, horizontal flip; He et al. 2016, "
           "section 4.2), the optimizer the paper's (SGD momentum 0.9, wd 5e-4, lr 0.01); precise "
           "BatchNorm statistics over 8,192 training samples before each evaluation (pycls "
           "compute_precise_bn_stats and its default sample count)",
    deviations=(
        "A step schedule (lr / 10 every 10 epochs, 30 epochs) instead of the paper's plateau rule, so a "
        "run's length is known before it starts.",
        "Horizontal flips are switched off for data sets where a reflection changes the class "
        "(handwritten digits).",
        "BatchNorm's moving statistics are recomputed before each evaluation (precise BN, with dropout "
        "off and the variance over all samples, not pycls's mean of batch variances): with the "
        "network's momentum 0.99 they lag the trained network by hundreds of steps.",
    ),
    accuracy="CIFAR-10: not measured here (no CIFAR-10 on this machine, no network) and no published "
             "number for this network; scikit-learn's digits, measured: see docs/training.md.",
)

FINETUNE = Recipe(
    name="finetune",
    variant="torchvision",
    lr=0.001, momentum=0.9, weight_decay=0.0, batch_size=32, epochs=25,
    schedule="step", step=7, gamma=0.1,
    # crop None: every network's own input size, resized as torchvision's 256 -> 224 (for_network)
    augment=Augment(crop=None, random_resized=True, flip=True),
    test_crops="center",
    precise_bn=8192,
    source="PyTorch's 'Transfer Learning for Computer Vision' tutorial (Chilamkurthy): SGD lr 0.001, "
           "momentum 0.9, no weight decay, StepLR step 7 gamma 0.1, 25 epochs; RandomResizedCrop 224 "
           "and flips, evaluation resize 256 and center crop 224, ImageNet's mean and std (torchvision's "
           "preprocessing); the Keras guide 'Transfer learning & fine-tuning' for freezing the base",
    deviations=(
        "Batch 32 instead of the tutorial's 4 (BatchNorm in the cifar network trains on batch "
        "statistics).",
        "The crop is the network's own input (224 torchvision, 227 paper, 32 cifar), with the "
        "evaluation resize at ImageNet's 256/224 of it.",
        "Precise BatchNorm statistics before each evaluation (the cifar recipe's reason); a frozen "
        "BatchNorm keeps its own.",
    ),
    accuracy="depends on the starting weights and the data; digits from an init file, measured: see "
             "docs/training.md (fine-tuning).",
)
# --8<-- [end:recipes]

RECIPES: dict[str, Recipe] = {r.name: r for r in (PAPER, TORCHVISION, CIFAR, FINETUNE)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}") from None


def for_network(recipe: Recipe, input_size: int) -> Recipe:
    """``recipe`` for a network reading ``input_size`` x ``input_size`` images: a recipe written for
    any network (``augment.crop`` None) crops that size, after a resize to ImageNet's 256/224 of it
    for evaluation; a recipe written for one network is returned as it is."""
    if recipe.augment.crop is not None:
        return recipe
    augment = replace(recipe.augment, crop=input_size, resize=resize_size_for(input_size))
    return replace(recipe, augment=augment)


def learning_rate(recipe: Recipe, epoch: int, val_top1: list[float] | tuple[float, ...] = (),
                  lr: float | None = None) -> float:
    """The learning rate of 0-based ``epoch``; ``val_top1`` holds the earlier epochs' validation
    accuracies (the plateau rule reads them). ``lr`` overrides the recipe's initial rate."""
    base = recipe.lr if lr is None else lr
    if recipe.schedule == "step":
        return base * recipe.gamma ** (epoch // recipe.step)
    if recipe.schedule == "plateau":
        drops, best, since = 0, -np.inf, 0
        for acc in val_top1[:epoch]:
            if acc > best:
                best, since = acc, 0
            else:
                since += 1
                if since >= recipe.patience:
                    drops, since = drops + 1, 0
        return base * recipe.gamma ** drops
    raise ValueError(f"unknown schedule {recipe.schedule!r}; expected 'step' or 'plateau'")


__all__ = ["Augment", "CAFFE_TEST", "FINETUNE", "RECIPES", "Recipe", "for_network", "get_recipe", "learning_rate"]
