"""One writer per run folder: an advisory lock on ``RUN_DIR/.lock``, held for a whole run.

Two runs writing into one folder would mix their files (``run.json`` from one, ``metrics.csv`` and
the model from the other), and the folder's existence checks cannot stop them: both pass before
either writes. ``fcntl.flock`` makes the check and the writes one critical section. The kernel
releases a flock when its process ends, however it ends, so a lock file left by a killed run
blocks nothing: only a live holder does. The file records the holder's pid and host for the
message the next writer gets. It locks a file in the folder, not the folder itself:
``alexnet_spec.files.atomic_write`` flocks the folder around each publish, and would wait forever
on its own run's lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".lock"
_TRIES = 5  # a holder may unlink the file between our open and our flock; then we open it again


class FolderInUse(ValueError):
    """Another live process holds the run folder's lock."""


class LockingUnavailable(RuntimeError):
    """This platform has no ``fcntl`` (Windows): a run folder cannot be locked."""

    for_user = True  # alexnet_cli.console prints it as written, not as a bug


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the ``with`` block, or raise :class:`FolderInUse` at once.

    Creates ``run_dir`` if needed. On leaving, removes the lock file, and ``run_dir`` too when this
    call created it and nothing was written into it (a refused run leaves no empty folder behind).
    """
    if fcntl is None:
        raise LockingUnavailable("alexnet-train locks its run folder with fcntl.flock, which this platform lacks; "
                      "train on Linux or macOS")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file; --out takes a folder for the run")
    created = not run_dir.exists()
    fd = _acquire(run_dir / LOCK_FILE)
    try:
        yield run_dir / LOCK_FILE
    finally:
        with contextlib.suppress(FileNotFoundError):
            (run_dir / LOCK_FILE).unlink()  # while still locked: a waiting opener then retries on a fresh file
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty


def holder(path: str | os.PathLike) -> str:
    """Who the lock file says holds it ("pid 123 on host"), or "" when it does not say."""
    try:
        pid, host = Path(path).read_text().split()
    except (OSError, ValueError):
        return ""
    return f"pid {pid} on {host}"


def _acquire(path: Path) -> int:
    for _ in range(_TRIES):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed by a holder leaving it: make it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = holder(path)
            raise FolderInUse(f"{path.parent} is in use by another alexnet-train{f' ({who})' if who else ''}; "
                              "wait for it to finish, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            return fd
        os.close(fd)  # we locked a file its holder had just unlinked: lock the one on disk now
    raise FolderInUse(f"{path.parent}: its lock file kept changing under us (another run starting and "
                      "stopping); try again, or choose another --out")


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


__all__ = ["LOCK_FILE", "FolderInUse", "LockingUnavailable", "hold", "holder"]
