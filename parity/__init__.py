"""Port AlexNet weights between PyTorch and Keras, and prove layer by layer that both compute the
same thing. The only package of this project that imports both frameworks."""

from parity._triton import keep_triton_safe

keep_triton_safe()  # before anything imports torchvision: see _triton.py

# isort: split

from alexnet_spec.port import PortError, PortReport
from parity.compare import DEFAULT_RTOL, LayerRow, ParityReport, compare
from parity.models import keras_to_torch, torch_to_keras
from parity.randomize import random_batch, randomize_torch

__all__ = [
    "DEFAULT_RTOL",
    "LayerRow",
    "ParityReport",
    "PortError",
    "PortReport",
    "compare",
    "keras_to_torch",
    "random_batch",
    "randomize_torch",
    "torch_to_keras",
]
