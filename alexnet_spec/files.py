"""Atomic, no-clobber writes with an optional sha256 sidecar, shared by every file format.

The bytes go to a temporary file beside the target; publishing it happens under an exclusive lock
on the directory, so the "does it exist?" check and the publish are one step: of two writers of
one new path, one wins and the other gets ``FileExistsError``. The order of the steps makes every
state a kill can leave consistent: the sidecar is published before its target (a kill between
leaves a sidecar with no target, which the next write of that name removes), a replaced target and
its sidecar are removed before the new sidecar goes in, and temporary files of dead writers are
removed by the next write beside them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from alexnet_spec import checksum

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.part")


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[str], None],
    *,
    overwrite: bool = False,
    sidecar: bool = False,
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then publish it as ``path``.

    The temporary name keeps the full suffix (``.weights.h5``, ``.keras``) because Keras checks it.
    With ``sidecar`` a ``sha256sum`` line is published beside it (``path.sha256``);
    without, a sidecar left from an earlier file of that name is removed, since it describes
    other bytes.
    """
    path = Path(path)
    check_writable_name(path)
    if not overwrite and os.path.lexists(path):
        raise _exists(path)  # early, to save the write; the lock below is what enforces it
    path.parent.mkdir(parents=True, exist_ok=True)
    side = checksum.sidecar(path)
    with _temporary(path) as tmp:
        write(str(tmp))
        _finish(tmp)
        line = checksum.sidecar_line(checksum.sha256(tmp), path.name) if sidecar else None
        with _locked(path.parent) as dir_fd:
            _remove_dead_writers(path)
            if os.path.lexists(path):
                if not overwrite:
                    raise _exists(path)
                if path.is_dir():
                    raise IsADirectoryError(f"{path} is a directory; choose a file name for the weights")
                path.unlink()  # first, so a kill from here on leaves no target to disagree with
            _unlink_quietly(side)  # an orphan, or it described the bytes just removed
            if line is not None:
                with _temporary(side) as side_tmp:
                    side_tmp.write_text(line)
                    _finish(side_tmp)
                    os.replace(side_tmp, side)
            _publish(tmp, path)
            os.fsync(dir_fd)
    return path


def atomic_replace(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    For a file that must exist at every moment, such as a training checkpoint that a killed run
    resumes from: :func:`atomic_write` removes the old file before it links the new one, and a kill
    between leaves neither. The rename replaces in one step. A sidecar beside ``path`` is left as it
    is: its caller keeps it true (``alexnet_training.runs.write_checkpoint``).
    """
    path = Path(path)
    check_writable_name(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(path) as tmp:
        write(str(tmp))
        _finish(tmp)
        with _locked(path.parent) as dir_fd:
            _remove_dead_writers(path)
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a directory; choose a file name")
            os.replace(tmp, path)
            os.fsync(dir_fd)
    return path


def write_sidecar(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """A ``sha256sum`` sidecar for a file that exists already (one written elsewhere)."""
    path = Path(path)
    line = checksum.sidecar_line(checksum.sha256(path), path.name)
    return atomic_write(checksum.sidecar(path), lambda tmp: Path(tmp).write_text(line), overwrite=overwrite)


def temp_name(path: Path) -> Path:
    """``.NAME.PID-RANDOM.part.SUFFIX`` beside ``path``: hidden, unique, and its writer's pid says
    whether it is still being written."""
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part{suffix}")


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """:func:`temp_name` for ``path``, removed on the way out unless it was renamed away."""
    tmp = temp_name(path)
    try:
        yield tmp
    finally:
        _unlink_quietly(tmp)


def _remove_dead_writers(path: Path) -> None:
    """Temporary files beside ``path`` (its own and its sidecar's) whose writer is dead."""
    for entry in os.scandir(path.parent):
        match = _TEMP.match(entry.name)
        if match and match.group("name").startswith(path.name) and not _alive(int(match.group("pid"))):
            _unlink_quietly(Path(entry.path))


def check_writable_name(path: Path) -> None:
    """Refuse a name the file system cannot hold (with room for the temporary name's extras)."""
    try:
        limit = os.pathconf(path.parent if path.parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    longest = len(os.fsencode(temp_name(checksum.sidecar(path)).name))
    if longest > limit:
        raise ValueError(
            f"the file name {path.name!r} is too long: {len(os.fsencode(path.name))} bytes, and this file "
            f"system allows {limit} per name (less {longest - len(os.fsencode(path.name))} for the temporary "
            "and checksum files). Choose a shorter name."
        )


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(
        f"{path} already exists; refusing to overwrite it. Pass overwrite=True (--force on the "
        "command line) to replace it, or choose another name."
    )


def _publish(tmp: Path, path: Path) -> None:
    """Link, not rename: the link fails if ``path`` appeared anyway (a writer that takes no lock)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        os.rename(tmp, path)  # a file system without hard links; the lock still orders writers


def _finish(tmp: Path) -> None:
    """Durable bytes and the mode a plain ``open`` would give (writers and ``mkstemp`` differ)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[int]:
    """An exclusive ``flock`` on the directory: released by the kernel if the process dies."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the hard link still refuses an existing target
            yield fd
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's live process (or a number that is not ours to judge)
    return True


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
