"""Atomic writes that never overwrite without being asked, shared by every file format."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, overwrite: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    The temporary name keeps the full suffix (``.weights.h5``, ``.keras``) because Keras checks it.
    A crash leaves the old file (or none), never a half-written one.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; refusing to overwrite it. Pass overwrite=True (--force on the "
            "command line) to replace it, or choose another name."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # some writers (h5py, zip) refuse an existing file
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        from alexnet_spec.checksum import SUFFIX, sidecar

        if overwrite and not path.name.endswith(SUFFIX) and sidecar(path).is_file():
            sidecar(path).unlink()  # it described the old content; writers that keep one write it anew
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
