"""Keep torch's triton from crashing a process that also runs TensorFlow.

TensorFlow >= 2.20 wheels load their statically linked LLVM with ``RTLD_GLOBAL``; triton (its own
LLVM), which torch imports on the first optimizer, ``torch.compile`` or torchvision import,
segfaults inside ``dlopen`` when loaded after TensorFlow (tensorflow#124205; measured here with
torch 2.14.1 and tensorflow 2.21: ``import tensorflow; import triton`` crashes, the other order
works). So we load triton first while TensorFlow is absent, and hide it where TensorFlow
came first: triton only compiles GPU kernels, and torch falls back without it.

This runs where both frameworks meet: on ``import parity`` and in the tests' conftest.
``import alexnet_torch`` does only the hiding half, and only when TensorFlow is already in the
process, so a PyTorch-only user's process is never touched. A program of its own that imports
TensorFlow and then torchvision calls :func:`keep_triton_safe` first, or imports ``parity`` first.
"""

from __future__ import annotations

import importlib.util
import sys


def keep_triton_safe() -> None:
    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    if "tensorflow" in sys.modules:
        sys.modules["triton"] = None
    else:
        import triton  # noqa: F401
