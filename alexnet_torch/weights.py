"""Reading and writing PyTorch weights safely: ``weights_only`` pickles and safetensors only."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alexnet_spec import checksum, exchange
from alexnet_spec.files import atomic_write
from alexnet_spec.messages import first_line, require_file

PT_SUFFIXES = (".pt", ".pth", ".bin")


def read_state_dict(
    path: str | os.PathLike, variant: str | None = None
) -> tuple[dict[str, torch.Tensor], exchange.Exchange | None]:
    """A state_dict from ``.pt``/``.pth`` (``weights_only=True``) or our ``.safetensors``.

    The second value is the exchange record (variant, options) for safetensors files, else None.
    Never runs code from the file: a pickle holding anything but tensors is refused.
    """
    path = require_file(path)
    if path.suffix == ".safetensors":
        ex = exchange.load(path, variant)
        return {k: torch.from_numpy(np.array(v)) for k, v in ex.state.items()}, ex
    if path.suffix not in PT_SUFFIXES:
        raise ValueError(
            f"{path}: unknown weight format {path.suffix!r}; expected one of "
            f"{', '.join(PT_SUFFIXES + ('.safetensors',))}"
        )
    checksum.verify(path)  # when a .sha256 sidecar is there
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} was refused: it holds Python objects other than tensors, and loading it would "
            f"run code from the file. Save a plain state_dict (torch.save(model.state_dict(), path)). "
            f"Details: {first_line(err)}"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({first_line(err)}). "
            "It may be truncated or of another format."
        ) from err
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of tensors). "
            "Save it with torch.save(model.state_dict(), path)."
        )
    return obj, None


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load ``path`` into ``model`` strictly; a mismatch names every missing/unexpected key."""
    state, _ = read_state_dict(path, getattr(model, "variant", None))
    return load_state(model, state, source=str(path))


def load_state(model: nn.Module, state: dict[str, torch.Tensor], *, source: str = "state_dict") -> nn.Module:
    """``load_state_dict`` that refuses a partial load and names every problem first.

    BatchNorm's ``num_batches_tracked`` may be absent (Keras has no such counter).
    """
    expected = model.state_dict()
    mismatched = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(v.shape)}"
        for k, v in state.items()
        if k in expected and expected[k].shape != v.shape
    ]
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if mismatched or missing or unexpected:
        problems = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                    f"shape mismatch {mismatched}" if mismatched else ""]
        raise ValueError(
            f"{source} does not fit {type(model).__name__}: {'; '.join(p for p in problems if p)}. "
            "Nothing was loaded. Check the variant and num_classes the weights were saved with."
        )
    model.load_state_dict(state, strict=False)
    return model


def save_weights(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = False, sidecar: bool = False) -> Path:
    """Write ``model``'s weights atomically as ``.pt`` (a state_dict) or ``.safetensors``; with
    ``sidecar``, a ``sha256sum`` file beside it that every reader here verifies."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        record = exchange.Exchange(
            state={k: v.numpy() for k, v in state.items()},
            variant=getattr(model, "variant", ""),
            options=dict(getattr(model, "options", {})),
        )
        return exchange.save(path, record, overwrite=overwrite, sidecar=sidecar)
    if path.suffix not in PT_SUFFIXES:
        raise ValueError(f"{path}: choose a .pt, .pth or .safetensors file name")
    return atomic_write(path, lambda tmp: _torch_save(state, tmp), overwrite=overwrite, sidecar=sidecar)


def _torch_save(state: dict, tmp: str) -> None:
    # Through a file object: given a path, torch names the archive's root after the file (here a
    # random temporary name), so the same weights would give different bytes and checksums.
    with open(tmp, "wb") as f:
        torch.save(state, f)
