"""One seeded, framework-neutral sampler and augmenter: the same batches in PyTorch and Keras.

Every random choice is a function of ``(seed, epoch, index)``: the order of an epoch comes from a
generator seeded with ``(seed, epoch)``, each sample's crop, flip and lighting from one seeded with
``(seed, epoch, index)``. Nothing depends on which process or thread computes a sample, or in what
order, so a PyTorch ``DataLoader`` with any number of workers and a ``keras.utils.PyDataset``
produce the same float32 arrays bit for bit (the frameworks only transpose them, NHWC to NCHW).

A resumed run recomputes an epoch's batches from the three numbers alone: there is no augmentation
RNG state to checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alexnet_training.data import check_sizes
from alexnet_training.recipes import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Augment

_ORDER, _SAMPLE = 0x0DE5, 0x5A3F  # stream tags: the order and the samples never share a stream


@dataclass
class Pipeline:
    """``data`` (an ``alexnet_training.data`` set) seen through ``augment``: ``train`` draws random
    crops, flips and lighting in a shuffled order of whole batches; otherwise the center crop, in
    order, every sample."""

    data: object
    augment: Augment
    train: bool
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self):
        """An image too small to crop is refused now, named, not when an epoch reaches it."""
        a = self.augment
        need = (f"the recipe's {'random' if self.train else 'center'} {a.crop}x{a.crop} crops"
                + (f" (after a {a.pad}-pixel pad)" if self.train and a.pad else "") + ", with no resize first,")
        check_sizes(self.data, min_side(a, self.train), need)

    def __len__(self) -> int:
        """Samples per epoch: training drops the last partial batch (BatchNorm cannot train on
        a batch of one, and every step then has the same size in both frameworks)."""
        n = len(self.data)
        return n - n % self.batch_size if self.train else n

    @property
    def num_batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Data indices in the order epoch ``epoch`` (0-based) visits them."""
        if not self.train:
            return np.arange(len(self.data))
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch, _ORDER])
            self._cached = cached = (epoch, rng.permutation(len(self.data))[: len(self)])
        return cached[1]

    def sample(self, index: int, epoch: int) -> tuple[np.ndarray, int]:
        """Data item ``index`` as epoch ``epoch`` sees it: float32 (H, W, 3) and its label."""
        return self.transform(index, epoch), int(self.data.labels[index])

    def batch(self, number: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``number`` of epoch ``epoch``: float32 (B, H, W, 3) and int64 labels."""
        order = self.order(epoch)
        indices = order[number * self.batch_size:(number + 1) * self.batch_size]
        x = np.stack([self.transform(int(i), epoch) for i in indices])
        return x, self.data.labels[indices].astype(np.int64)

    def transform(self, index: int, epoch: int) -> np.ndarray:
        a = self.augment
        image = self.data.image(index)
        if not self.train:
            return _normalize(_center(image, a), a)
        rng = np.random.default_rng([self.seed, epoch, index, _SAMPLE])
        if a.random_resized:
            image = _random_resized_crop(image, a, rng)
        else:
            image = _resize(image, a)
            if a.pad:
                image = np.pad(image, ((a.pad, a.pad), (a.pad, a.pad), (0, 0)))
            h, w = image.shape[:2]
            if min(h, w) < a.crop:
                raise ValueError(f"cannot crop {a.crop}x{a.crop} from a {w}x{h} image; the recipe's "
                                 "resize or pad must reach the network's input size")
            top, left = rng.integers(0, h - a.crop + 1), rng.integers(0, w - a.crop + 1)
            image = image[top:top + a.crop, left:left + a.crop]
        if a.flip and getattr(self.data, "flip_ok", True) and rng.random() < 0.5:
            image = image[:, ::-1]
        x = image.astype(np.float32) / np.float32(255.0)
        if a.lighting:
            x = _lighting(x, a.lighting, rng)
        return _normalize(x, a, scaled=True)

    def ten_crops(self, index: int) -> np.ndarray:
        """The paper's test crops: four corners and the center, and their reflections (10, H, W, 3);
        with :data:`~alexnet_training.recipes.CAFFE_TEST`, Caffe's ``oversample`` in the same order."""
        a = self.augment
        image = _resize(self.data.image(index), a)
        if a.pad:
            image = np.pad(image, ((a.pad, a.pad), (a.pad, a.pad), (0, 0)))
        h, w, c = image.shape[0], image.shape[1], a.crop
        corners = [(0, 0), (0, w - c), (h - c, 0), (h - c, w - c), ((h - c) // 2, (w - c) // 2)]
        crops = [image[t:t + c, s:s + c] for t, s in corners]
        crops += [crop[:, ::-1] for crop in crops]
        return np.stack([_normalize(crop, a) for crop in crops])


def min_side(a: Augment, train: bool) -> int:
    """The shorter side an image needs for ``a`` to crop it: any (1) when it is resized first, or
    in training a random resized crop; else the crop, less the zero padding of training crops."""
    if a.resize is not None or (train and a.random_resized):
        return 1
    return a.crop - 2 * a.pad if train else a.crop


def _resize(image: np.ndarray, a: Augment) -> np.ndarray:
    if a.resize is None:
        return image
    if a.stretch:  # Caffe: resize x resize, OpenCV's bilinear, float32 (not rounded back to uint8)
        from alexnet_training.images import resize_bilinear

        return resize_bilinear(image, a.resize, a.resize)
    from PIL import Image

    from alexnet_training.images import center_crop, resize_shorter

    pil = resize_shorter(Image.fromarray(image), a.resize)
    if a.square:
        pil = center_crop(pil, a.resize)
    return np.asarray(pil)


def _center(image: np.ndarray, a: Augment) -> np.ndarray:
    image = _resize(image, a)
    h, w = image.shape[:2]
    if min(h, w) < a.crop:
        raise ValueError(f"cannot center-crop {a.crop}x{a.crop} from a {w}x{h} image")
    if a.stretch:  # Caffe's DataTransformer: integer division
        top, left = (h - a.crop) // 2, (w - a.crop) // 2
    else:  # torchvision's F.center_crop
        top, left = int(round((h - a.crop) / 2.0)), int(round((w - a.crop) / 2.0))
    return image[top:top + a.crop, left:left + a.crop]


def _random_resized_crop(image: np.ndarray, a: Augment, rng: np.random.Generator) -> np.ndarray:
    """torchvision's RandomResizedCrop: a random area and aspect ratio (10 tries, then the
    center), resized to ``crop`` with PIL's bilinear filter."""
    from PIL import Image

    h, w = image.shape[:2]
    area = h * w
    log_ratio = np.log(a.ratio)
    for _ in range(10):
        target = area * rng.uniform(*a.scale)
        aspect = np.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            break
    else:
        in_ratio = w / h
        if in_ratio < min(a.ratio):
            cw, ch = w, int(round(w / min(a.ratio)))
        elif in_ratio > max(a.ratio):
            ch, cw = h, int(round(h * max(a.ratio)))
        else:
            cw, ch = w, h
        top, left = (h - ch) // 2, (w - cw) // 2
    pil = Image.fromarray(image[top:top + ch, left:left + cw])
    return np.asarray(pil.resize((a.crop, a.crop), Image.BILINEAR))


def _lighting(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """The paper's PCA colour augmentation: add ``eigvec @ (alpha * eigval)`` to every pixel,
    ``alpha ~ N(0, std)`` once per image (ImageNet's RGB eigen-decomposition, values in [0, 1])."""
    alpha = rng.normal(0.0, std, size=3)
    shift = np.asarray(IMAGENET_EIGVEC, np.float64) @ (alpha * np.asarray(IMAGENET_EIGVAL, np.float64))
    return (x + shift.astype(np.float32)).astype(np.float32)


def _normalize(x: np.ndarray, a: Augment, *, scaled: bool = False) -> np.ndarray:
    """0..255 values (``scaled``: already divided by 255) to ``(x - mean) / std`` of values in
    [0, ``a.max_value``], the channels reversed when ``a.bgr``."""
    if scaled:
        x = x * np.float32(a.max_value) if a.max_value != 1.0 else x
    elif a.max_value == 255.0:
        x = x.astype(np.float32)
    else:
        x = x.astype(np.float32) / np.float32(255.0 / a.max_value)
    if a.bgr:
        x = x[..., ::-1]
    mean, std = np.asarray(a.mean, np.float32), np.asarray(a.std, np.float32)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


__all__ = ["Pipeline", "min_side"]
