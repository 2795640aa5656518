"""ImageNet facts both frameworks need: the pretrained weights, the preprocessing, the class names.

torchvision's ``AlexNet_Weights`` enum is the source on the PyTorch side; this module holds the
same numbers for a Keras-only install (which must not import torch) and a test checks that the two
agree. Class names ship as package data (``data/imagenet_classes.txt``, generated once from
``torchvision.models._meta._IMAGENET_CATEGORIES``), so decoding predictions needs no download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

# Preprocessing of torchvision's ImageNet classifiers (``transforms._presets.ImageClassification``).
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
RESIZE_SIZE = 256  # shorter side, bilinear with antialiasing
CROP_SIZE = 224  # center crop


def resize_size_for(crop_size: int) -> int:
    """The shorter side to resize to before a center crop of ``crop_size``: ImageNet's 256/224
    ratio, so 256 for 224, 259 for paper's 227 and 37 for cifar's 32 (not a 32x32 patch of 256)."""
    return round(RESIZE_SIZE * crop_size / CROP_SIZE)


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of published weights, with every number a user needs to reproduce it."""

    name: str  # torchvision's enum member
    variant: str
    url: str
    file_name: str
    sha256_prefix: str  # the hash prefix in the file name, checked by torchvision on download
    num_params: int
    acc1: float  # ImageNet-1K validation, single 224 crop
    acc5: float
    gflops: float  # multiply-adds per 224x224 image, as torchvision reports them
    resize_size: int = RESIZE_SIZE
    crop_size: int = CROP_SIZE
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    @property
    def converted_name(self) -> str:
        """File name of the converted weights in the Keras cache (``weights="imagenet"``)."""
        return f"alexnet_{self.variant}_{self.name.lower()}.safetensors"

    def file_digest(self, path: str | os.PathLike) -> tuple[str, bool]:
        """``path``'s sha256, and whether it starts with the prefix this file's name carries
        (torchvision checks it only when it downloads; a cached or copied file is checked here)."""
        from alexnet_spec import checksum

        digest = checksum.sha256(path)
        return digest, digest.startswith(self.sha256_prefix)

    def port_command(self, target: str | os.PathLike) -> str:
        return f"alexnet-parity port --variant {self.variant} --weights {self.name} {target}"


IMAGENET1K_V1 = PretrainedWeights(
    name="IMAGENET1K_V1",
    variant="torchvision",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    file_name="alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
    num_params=61_100_840,
    acc1=56.522,
    acc5=79.066,
    gflops=0.714,
)

PRETRAINED: dict[str, PretrainedWeights] = {IMAGENET1K_V1.name: IMAGENET1K_V1}


def get_pretrained(name: str) -> PretrainedWeights:
    try:
        return PRETRAINED[name]
    except KeyError:
        raise ValueError(f"unknown pretrained weights {name!r}; expected one of {', '.join(PRETRAINED)}") from None


def keras_cache_dir() -> Path:
    """Keras's own cache rule, read at call time: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home) / "models"


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names, in torchvision's order (the model's output order)."""
    text = resources.files("alexnet_spec").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(text.splitlines())
    if len(names) != 1000:
        raise RuntimeError(f"alexnet_spec/data/imagenet_classes.txt holds {len(names)} names, not 1000; reinstall")
    return names


def decode_predictions(preds, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """``(class index, class name, score)`` of the ``top`` highest scores of each row, best first.

    Scores are returned as given (probabilities or logits); ties keep the lower index first, as
    a stable sort does in both frameworks.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"decode_predictions expects a batch of 1000 ImageNet scores, shape (N, 1000); found shape "
            f"{preds.shape}. Pass the output of a 1000-class model (add a batch axis for one image)."
        )
    if not 1 <= top <= 1000:
        raise ValueError(f"top must be between 1 and 1000; found {top}")
    names = class_names()
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [[(int(i), names[i], float(row[i])) for i in idx] for row, idx in zip(preds, order)]
