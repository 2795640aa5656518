"""Small helpers that keep error messages honest: the file kind named, never an empty detail."""

from __future__ import annotations

import os
from pathlib import Path


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none (an empty message
    once turned a refused checkpoint into an IndexError)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def require_file(path: str | os.PathLike, what: str = "weight file") -> Path:
    """``path`` if it is a file; else an error that says whether it is missing or a directory."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; expected a {what}. Name the file inside it.")
    if not path.is_file():
        raise FileNotFoundError(f"no such {what}: {path}")
    return path
