"""Load triton before TensorFlow, or the first ``torch.optim`` optimizer kills the process.

TensorFlow >= 2.20 wheels load their statically linked LLVM with ``RTLD_GLOBAL``; triton, which
torch imports on the first optimizer constructor (and on ``torch.compile``), has its own LLVM and
crashes with SIGSEGV inside ``dlopen`` when it is loaded after TensorFlow (tensorflow#124205;
measured here: ``import tensorflow; import triton`` segfaults, the other order works). This package
is the one that imports both frameworks, so importing it loads triton first when TensorFlow is not
yet loaded; where it already is, code about to build a torch optimizer fails with an error that
says what to do instead of a crash.
"""

from __future__ import annotations

import importlib.util
import sys


def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def load_triton_first() -> None:
    if "triton" in sys.modules or "tensorflow" in sys.modules or not _triton_installed():
        return
    import triton  # noqa: F401


def check_torch_optim_is_safe() -> None:
    if "tensorflow" in sys.modules and "triton" not in sys.modules and _triton_installed():
        raise RuntimeError(
            "TensorFlow was imported before triton, and torch.optim would now load triton and crash "
            "the interpreter (TensorFlow >= 2.20 exports its LLVM globally; tensorflow#124205). "
            "Import parity (or triton) before tensorflow/keras, e.g. at the top of the script."
        )
