"""The framework-neutral weight file: safetensors in PyTorch's layout, readable with numpy alone.

Metadata names the variant, its options and the layout, so a file says what it holds and a reader
never has to guess. safetensors holds no code, so reading a file a user hands us runs nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alexnet_spec.files import atomic_write

FORMAT = "alexnet-parity/1"
LAYOUT = "torch"  # state_dict keys, NCHW convolution kernels, (out, in) dense weights


@dataclass
class Exchange:
    state: dict[str, np.ndarray]
    variant: str
    options: dict = field(default_factory=dict)


def save(path: str | os.PathLike, ex: Exchange, *, overwrite: bool = False) -> Path:
    from safetensors.numpy import save_file

    metadata = {
        "format": FORMAT,
        "layout": LAYOUT,
        "variant": ex.variant,
        "options": json.dumps(ex.options, sort_keys=True),
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in ex.state.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), overwrite=overwrite)


def load(path: str | os.PathLike, variant: str | None = None) -> Exchange:
    """Read a file written by :func:`save` (checked against its sha256 sidecar when there is one,
    and against ``variant`` when given); a clear ValueError for anything else."""
    from safetensors import safe_open

    from alexnet_spec import checksum

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such weight file: {path}")
    checksum.verify(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}). It may be truncated or of another "
            "format; re-create it with `alexnet-parity port`."
        ) from err
    if metadata.get("format") != FORMAT or metadata.get("layout") != LAYOUT or not metadata.get("variant"):
        raise ValueError(
            f"{path} is a safetensors file but not one of ours: expected metadata format={FORMAT!r}, "
            f"layout={LAYOUT!r} and a variant; found {metadata or 'none'}. Write it with `alexnet-parity port`."
        )
    try:
        options = json.loads(metadata.get("options", "{}"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: its 'options' metadata is not JSON ({err})") from err
    from alexnet_spec.variants import check_options

    found = metadata["variant"]
    if variant is not None and found != variant:
        raise ValueError(
            f"{path} holds weights of the {found!r} AlexNet, not {variant!r}; build the {found!r} "
            "variant to load it."
        )
    if not isinstance(options, dict):
        raise ValueError(f"{path}: its 'options' metadata must be a JSON object; found {options!r}")
    return Exchange(state=state, variant=found, options=check_options(found, options))

