"""ImageNet preprocessing and decoding for PyTorch: torchvision's own transforms.

``transforms()`` is the weights enum's (resize 256 bilinear antialiased, center crop 224,
ImageNet mean/std); images are opened by ``alexnet_training.images.open_photo``, the same mode and size
decisions the Keras pipeline makes.
"""

from __future__ import annotations

import torch
from torchvision.models import AlexNet_Weights
from torchvision.transforms._presets import ImageClassification

from alexnet_spec import get_spec
from alexnet_spec import imagenet as _imagenet
from alexnet_training.images import open_photo


# --8<-- [start:transforms]
def transforms(variant: str = "torchvision") -> torch.nn.Module:
    """The preprocessing for ``variant``: torchvision's enum transforms; the same recipe cropped to
    the variant's input size otherwise (227 for ``paper``)."""
    if variant == "torchvision":
        return AlexNet_Weights.IMAGENET1K_V1.transforms()
    spec = get_spec(variant)
    return ImageClassification(
        crop_size=spec.input_size,
        resize_size=_imagenet.resize_size_for(spec.input_size))
# --8<-- [end:transforms]


def load_image(source, variant: str = "torchvision", preprocessing: str = "torchvision", mean=None) -> torch.Tensor:
    """One image (path or PIL image) as the network's input: a float32 (3, H, W) tensor.

    ``preprocessing="caffe"`` (the ``paper`` variant with Caffe's bvlc_alexnet weights): resized to
    256x256, center crop 227, BGR, 0..255, ``mean`` subtracted (BGR values or a mean image; default
    104, 117, 123)."""
    if preprocessing == "caffe":
        from alexnet_training.images import CAFFE_MEAN_BGR, caffe_input

        image = open_photo(source, None)
        return torch.from_numpy(caffe_input(image, CAFFE_MEAN_BGR if mean is None else mean).transpose(2, 0, 1).copy())
    if preprocessing != "torchvision":
        raise ValueError(f"preprocessing must be 'torchvision' or 'caffe'; found {preprocessing!r}")
    # the transforms resize first, so any photograph open_photo takes becomes the network's input size
    return transforms(variant)(open_photo(source, _imagenet.resize_size_for(get_spec(variant).input_size)))


def decode_predictions(preds, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """``(class index, class name, score)`` of the ``top`` best classes of each row of ``preds``."""
    if isinstance(preds, torch.Tensor):
        preds = preds.detach().cpu().double().numpy()
    return _imagenet.decode_predictions(preds, top)
