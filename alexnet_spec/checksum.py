"""SHA-256 sidecars for weight files: ``model.safetensors.sha256`` beside ``model.safetensors``.

The sidecar holds one ``sha256sum`` line (``<64 hex>  <file name>``), so ``sha256sum -c`` checks
it too. ``alexnet-parity port`` writes one for every file it writes (``alexnet_spec.files``); loaders verify it when it is
there, and require it for the converted ImageNet weights, so a truncated or altered download is
refused before any of it is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SUFFIX = ".sha256"


def sidecar(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sidecar_line(digest: str, name: str) -> str:
    return f"{digest}  {name}\n"


def require_sidecar(path: str | os.PathLike) -> None:
    """Refuse a file that has no sidecar (for files that must be verifiable)."""
    path, side = Path(path), sidecar(path)
    if not side.is_file():
        raise ValueError(
            f"{path} has no checksum file {side.name} beside it, so it cannot be verified. "
            "Re-create both with `alexnet-parity port` (it writes the checksum)."
        )


def unverified(path: str | os.PathLike) -> str | None:
    """The warning a command prints after using ``path`` when no sidecar vouches for it (a
    truncated or altered file would then go unnoticed); None when one does (:func:`verify` checks it)."""
    path, side = Path(path), sidecar(path)
    if side.is_file():
        return None
    return (f"nothing verified {path}: it has no {side.name} beside it, so a truncated or altered file would go "
            f"unnoticed. `alexnet-parity port` writes one with every file; for a file you trust, write it with "
            f"`sha256sum {path.name} > {side.name}` in its folder.")


def verify(path: str | os.PathLike, *, required: bool = False) -> str | None:
    """Check ``path`` against its sidecar; the digest when checked, None when there is none."""
    path, side = Path(path), sidecar(path)
    if required:
        require_sidecar(path)
    if not side.is_file():
        return None
    fields = side.read_text().split()
    if len(fields) != 2 or len(fields[0]) != 64 or fields[1].lstrip("*") != path.name:
        raise ValueError(f"{side} is not a sha256sum line for {path.name}; re-create it with `alexnet-parity port`")
    found = sha256(path)
    if found != fields[0].lower():
        raise ValueError(
            f"{path} does not match its checksum: expected sha256 {fields[0]}, found {found}. The file "
            "is truncated or was changed; delete it and re-create it with `alexnet-parity port`."
        )
    return found
