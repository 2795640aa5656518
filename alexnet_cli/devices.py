"""``--device`` and ``--precision`` of alexnet-train, alexnet-eval and alexnet-predict.

torch is told its device (``alexnet_torch.devices``). Keras's backends place work on their first
GPU themselves, so ``--device cpu`` hides the GPUs and ``cuda:N`` shows GPU N alone, through
``CUDA_VISIBLE_DEVICES`` set before the backend starts (TensorFlow, JAX and torch all read it then;
no backend-neutral call does it), and ``alexnet_keras.devices`` checks what the backend then sees.
alexnet-train names the device it settled on in its first line (stderr; not with ``--json``);
alexnet-eval and alexnet-predict in the first line of their result (an error stays one line).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass

from alexnet_cli.console import UsageError, import_frameworks

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_name(text: str) -> str:
    """An argparse ``type``: auto, cpu, cuda or cuda:N."""
    if not DEVICE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N; found {text!r}")
    return text


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_name, default="auto", metavar="{auto,cpu,cuda,cuda:N}",
                   help="where to compute (default auto: a CUDA GPU when there is one, else the CPU)")


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default), or mixed precision: bf16 (CPU or GPU), fp16 (GPU, with loss scaling); "
                        "weights stay float32, the loss is taken in float32")


@dataclass
class Placement:
    name: str  # what run.json records: cpu, cuda:0 (torch), gpu:0 (Keras)
    line: str  # the device line: "cpu (torch 2.x)"
    torch_device: object = None  # the torch.device, for torch

    @property
    def on_gpu(self) -> bool:
        return self.name != "cpu"


def hide_gpus(name: str) -> str:
    """Before Keras's backend starts: ``cpu`` hides every GPU, ``cuda:N`` leaves GPU N alone in
    sight. Returns the name as the frameworks see the devices after (GPU N is then their first)."""
    if "keras" in sys.modules or name in ("auto", "cuda"):  # nothing to hide, or too late to
        return name
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if name == "cpu" else name.partition(":")[2]
    return "cpu" if name == "cpu" else "cuda"


def place(frameworks, name: str, *, also=()) -> dict[str, Placement]:
    """Each framework's device for ``--device name`` (importing the frameworks, and those in
    ``also`` that only read a file, torch first); a GPU that is not there is a ValueError with what
    to use instead, raised before anything is written."""
    imports = {*frameworks, *also}
    if "keras" in imports:
        name = hide_gpus(name)
    import_frameworks(torch="torch" in imports, keras="keras" in imports)
    places = {}
    if "torch" in frameworks:
        from alexnet_torch.devices import describe_device, use_device

        device = use_device(name)
        places["torch"] = Placement(str(device), describe_device(device), device)
    if "keras" in frameworks:
        from alexnet_keras.devices import describe_device, resolve_device

        device = resolve_device(name)
        places["keras"] = Placement(device, describe_device(device))
    return places


def check_precision(precision: str, on_gpu: bool) -> None:
    """fp16 is refused on the CPU, where it runs but a float16 training step took 14x (torch) and
    80x (Keras on TensorFlow) as long as a bf16 one (docs/training.md)."""
    if precision == "fp16" and not on_gpu:
        raise UsageError("--precision fp16 on the CPU: a float16 training step takes 14x (torch) to 80x (Keras) "
                         "as long as a bf16 one there; use --precision bf16 on the CPU, or fp16 on a GPU "
                         "(--device cuda)")


def announce(places, *, as_json: bool) -> None:
    """The device line, first on stderr (``--json`` keeps to its one object on stdout)."""
    if not as_json:
        print("device: " + "; ".join(p.line for p in places), file=sys.stderr, flush=True)


__all__ = ["PRECISIONS", "Placement", "add_device_argument", "add_precision_argument", "announce",
           "check_precision", "device_name", "hide_gpus", "place"]
