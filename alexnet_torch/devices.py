"""Where a PyTorch run computes, and in what precision: ``--device`` and ``--precision``.

``auto`` is CUDA when torch sees it, else the CPU. Mixed precision is ``torch.autocast`` around
the forward pass (the loss is taken in float32), with a ``torch.amp.GradScaler`` for float16,
whose 5 exponent bits underflow small gradients; bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

import torch

# --precision -> the dtype torch.autocast computes in (None: plain float32)
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a ``torch.device`` this machine has; a CUDA
    device it lacks is a ``ValueError`` that says what to use instead."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine's torch sees no CUDA device "
                         "(torch.cuda.is_available() is False); use --device cpu or auto")
    count = torch.cuda.device_count()
    if (device.index or 0) >= count:
        raise ValueError(f"--device {name}: torch sees {count} CUDA device{'s' * (count != 1)} "
                         f"(cuda:0 to cuda:{count - 1}); use one of them, or --device cuda")
    return torch.device("cuda", device.index or 0)


def use_device(name: str = "auto") -> torch.device:
    """:func:`resolve_device`, and on CUDA cuDNN's autotuner (``cudnn.benchmark``: every batch
    has the same shape, so the fastest convolution found for the first serves them all)."""
    device = resolve_device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def describe_device(device: torch.device) -> str:
    """``cpu (torch 2.x)`` or ``cuda:0 (NVIDIA H100 ..., torch 2.x)``: the device line of a run."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}, torch {torch.__version__})"
    return f"{device} (torch {torch.__version__})"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype ``torch.autocast`` computes in under ``precision`` (fp32, bf16, fp16)."""
    if precision not in AUTOCAST:
        raise ValueError(f"--precision {precision}: expected one of {', '.join(AUTOCAST)}")
    return AUTOCAST[precision]


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (its state goes into the checkpoint, so a resumed run scales as the
    whole one would); None for fp32 and bf16."""
    if autocast_dtype(precision) is not torch.float16:
        return None
    return torch.amp.GradScaler(device.type)


def rng_state(device: torch.device) -> dict:
    """For a checkpoint: the CUDA generator's state on a CUDA device (dropout draws from it
    there, not from the CPU's); nothing on the CPU."""
    return {"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore :func:`rng_state` when the run goes on on a CUDA device and the checkpoint has one."""
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


__all__ = ["AUTOCAST", "autocast_dtype", "describe_device", "grad_scaler", "resolve_device", "rng_state",
           "set_rng_state", "use_device"]
