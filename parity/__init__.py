"""Port AlexNet weights between PyTorch and Keras, and prove that both compute the same thing: layer
by layer (``compare``), through training steps (``steps``) and across data-parallel replicas
(``replicas_torch``, ``replicas_keras``); ONNX export and ``parity.testing`` for users' suites.

The library where both frameworks meet; the commands that drive it live in ``alexnet_cli``."""

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
