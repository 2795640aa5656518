"""ImageNet preprocessing and decoding for Keras, reproducing torchvision's pipeline without torch.

``load_image`` resizes the shorter side to 256 with PIL's bilinear filter (antialiased) and
center-crops 224, as torchvision's transforms do on a PIL image; ``preprocess_input`` scales
0..255 RGB to torchvision's normalization, ``(x / 255 - mean) / std``.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from alexnet_spec import get_spec
from alexnet_spec import imagenet as _imagenet
from alexnet_training import images as _images


# --8<-- [start:preprocess]
def preprocess_input(x, mode: str = "torchvision"):
    """0..255 RGB, channels last (a numpy array or a tensor), to the network's input (float32).
    ``mode="caffe"``: bvlc_alexnet's input (BGR, 0..255, mean 104, 117, 123 subtracted)."""
    if mode == "caffe":
        return _caffe_input(x)
    if mode != "torchvision":
        raise ValueError(f"mode must be 'torchvision' or 'caffe'; found {mode!r}")
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return _images.normalize(x)
    x = ops.cast(x, "float32")
    if x.shape[-1] != 3:
        raise ValueError("expected RGB values on the last axis (..., 3); "
                         f"found shape {tuple(x.shape)}")
    mean = ops.convert_to_tensor(np.asarray(_imagenet.MEAN, np.float32))
    std = ops.convert_to_tensor(np.asarray(_imagenet.STD, np.float32))
    return (x / 255.0 - mean) / std
# --8<-- [end:preprocess]


def _caffe_input(x):
    """Caffe's input, as ``keras.applications.imagenet_utils`` calls it: RGB -> BGR, mean subtracted."""
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return _images.caffe_normalize(x)
    x = ops.cast(x, "float32")
    if x.shape[-1] != 3:
        raise ValueError(f"expected RGB values on the last axis (..., 3); found shape {tuple(x.shape)}")
    return ops.flip(x, axis=-1) - ops.convert_to_tensor(np.asarray(_images.CAFFE_MEAN_BGR, np.float32))


def load_image(source, variant: str = "torchvision", preprocessing: str = "torchvision") -> np.ndarray:
    """One image (path or PIL image), resized and center-cropped: float32 (H, W, 3), 0..255.

    ``preprocessing="caffe"``: Caffe's resize to 256x256 (aspect not kept) and center crop 227;
    follow with ``preprocess_input(x, mode="caffe")``.

    Follow with :func:`preprocess_input`. Mode handling (grayscale, RGBA, CMYK ...) and the
    sizes refused are those of ``alexnet_training.images.open_photo``: the resize comes first, so a
    photograph smaller than the network's input is taken.
    """
    spec = get_spec(variant)
    if preprocessing == "caffe":
        return _images.caffe_crop_rgb(_images.open_photo(source, None))
    if preprocessing != "torchvision":
        raise ValueError(f"preprocessing must be 'torchvision' or 'caffe'; found {preprocessing!r}")
    return _images.load_image(source, resize_size=_imagenet.resize_size_for(spec.input_size), crop_size=spec.input_size)


def decode_predictions(preds, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """``(class index, class name, score)`` of the ``top`` best classes of each row of ``preds``."""
    return _imagenet.decode_predictions(ops.convert_to_numpy(preds), top)
