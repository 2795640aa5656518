"""Where Keras computes, and in what precision, on any backend: ``--device`` and ``--precision``.

TensorFlow, JAX and torch under Keras place work on their first GPU themselves when they see one;
no Keras call moves a model. So ``--device`` here only checks and names what the backend sees:
hiding the GPUs (``--device cpu``) or picking one (``cuda:N``) is ``CUDA_VISIBLE_DEVICES``, set
before the backend starts (``alexnet_cli.devices.hide_gpus``). Mixed precision is a Keras dtype
policy in force while the model is built (variables float32, layers computing in bfloat16 or
float16); Keras's losses take their inputs in float32, and ``compile_for_training`` wraps the
optimizer in a ``LossScaleOptimizer`` for float16.
"""

from __future__ import annotations

import contextlib
import re
import sys

import keras
from keras import ops

# --precision -> the Keras dtype policy the model is built under
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def gpus() -> list[str]:
    """The GPUs the backend computes on, as Keras names them (``gpu:0``, ...)."""
    if keras.config.backend() == "torch":  # no device list in Keras's torch backend: ask a tensor
        where = str(ops.zeros(()).device)
        return ["gpu:" + (where.partition(":")[2] or "0")] if where.startswith("cuda") else []
    try:
        return keras.distribution.list_devices("gpu")
    except RuntimeError:  # JAX without a GPU platform
        return []


def resolve_device(name: str = "auto") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as the device Keras computes on (``cpu``,
    ``gpu:0``); a GPU the backend lacks, or GPUs it already took where the CPU was asked for, is a
    ``ValueError`` that says what to do."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ValueError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    backend, found = keras.config.backend(), gpus()
    if name == "cpu" and found:
        raise ValueError(f"--device cpu: Keras's {backend} backend started with its GPUs ({', '.join(found)}) "
                         "before they could be hidden; set CUDA_VISIBLE_DEVICES= before Python starts, or use "
                         "--device auto")
    if name in ("auto", "cpu"):
        return found[0] if found else "cpu"
    if not found:
        raise ValueError(f"--device {name}: Keras's {backend} backend sees no GPU; use --device cpu or auto")
    if name.partition(":")[2] not in ("", "0"):
        raise ValueError(f"--device {name}: Keras computes on the first GPU it sees, and its {backend} backend "
                         f"has started; start with CUDA_VISIBLE_DEVICES={name.partition(':')[2]} instead")
    return found[0]


def describe_device(device: str) -> str:
    """``cpu (keras 3.x, tensorflow 2.x)``: the device line of a run."""
    backend = keras.config.backend()
    version = getattr(sys.modules.get(backend), "__version__", "")
    return f"{device} (keras {keras.__version__}, {backend} {version})".replace(" )", ")")


@contextlib.contextmanager
def precision_policy(precision: str):
    """Build the model inside this block to give it ``precision`` (fp32, bf16, fp16); the global
    policy is restored after, so later models are float32 again."""
    if precision not in POLICIES:
        raise ValueError(f"--precision {precision}: expected one of {', '.join(POLICIES)}")
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


__all__ = ["POLICIES", "describe_device", "gpus", "precision_policy", "resolve_device"]
