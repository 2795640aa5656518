"""The framework-neutral weight file: safetensors in PyTorch's layout, readable with numpy alone.

Metadata names the variant, its options, the layout and (for Caffe's weights) the input the
weights read, so a file says what it holds and a reader
never has to guess. safetensors holds no code, so reading a file a user hands us runs nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alexnet_spec.files import atomic_write
from alexnet_spec.messages import require_file

FORMAT = "alexnet-parity/1"
LAYOUT = "torch"  # state_dict keys, NCHW convolution kernels, (out, in) dense weights


@dataclass
class Exchange:
    state: dict[str, np.ndarray]
    variant: str
    options: dict = field(default_factory=dict)
    # "caffe": the weights read Caffe's input (BGR, 0..255, mean subtracted), as bvlc_alexnet's; ""
    # for every network trained or published with torchvision's normalization. Written to the
    # file's metadata only when set, so other files keep their bytes.
    preprocessing: str = ""


def save(path: str | os.PathLike, ex: Exchange, *, overwrite: bool = False, sidecar: bool = False) -> Path:
    """Write ``ex`` atomically; the same record always gives the same bytes (and sha256)."""
    metadata = {
        "format": FORMAT,
        "layout": LAYOUT,
        "variant": ex.variant,
        "options": json.dumps(ex.options, sort_keys=True),
    }
    if ex.preprocessing:
        metadata["preprocessing"] = ex.preprocessing
    # np.ascontiguousarray makes a 0-d array 1-d: BatchNorm's num_batches_tracked would come back (1,)
    tensors = {k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in ex.state.items()}
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(canonical_bytes(tensors, metadata)),
                        overwrite=overwrite, sidecar=sidecar)


def canonical_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the header's keys sorted: the library writes its metadata (a hash
    map) in an order that changes between processes, so the same weights hashed differently."""
    from safetensors.numpy import save

    data = save(tensors, metadata=metadata)
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the tensor data to 8 bytes
    return len(text).to_bytes(8, "little") + text + data[8 + size:]


def load(path: str | os.PathLike, variant: str | None = None) -> Exchange:
    """Read a file written by :func:`save` (checked against its sha256 sidecar when there is one,
    and against ``variant`` when given); a clear ValueError for anything else."""
    from safetensors import safe_open

    from alexnet_spec import checksum

    path = require_file(path)
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
    return Exchange(state=state, variant=found, options=check_options(found, options),
                    preprocessing=metadata.get("preprocessing", ""))

