"""What every command-line program here shares: exit codes, quiet framework imports, and one
error line (or one JSON object) instead of a traceback.

Only the programs use this; the library leaves the process's logging and file descriptors alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

EXIT_OK, EXIT_DIFFER, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C

# Lines TensorFlow's C++ runtime writes straight to file descriptor 2 while it loads: absl's
# "before InitializeLog" notice and absl-formatted records (e.g. "I0000 00:00:... port.cc:153]
# oneDNN custom operations are on ..."). No environment variable silences them on every CPU.
NATIVE_LOG_LINE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWEF]\d{4} \d\d:\d\d:\d+(?:\.\d+)? +\d+ [\w.\-]+:\d+\] .*)\r?$"
)


class UsageError(Exception):
    """Wrong arguments: reported like any other error (one line, or JSON), exit 2."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; --json needs JSON instead
        raise UsageError(f"{message} (see {self.prog} --help)")


def _number(parse: Callable[[str], float], admits: Callable[[float], bool], expected: str):
    """An argparse ``type`` that parses with ``parse`` and refuses what ``admits`` does not
    (``float()`` alone takes 'nan' and 'inf', which would train to NaN weights)."""

    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; found {text!r}") from None
        if not admits(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; found {text}")
        return value

    return check


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number, 0 or more")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a finite number above 0")
probability = _number(float, lambda v: 0 <= v < 1, "a rate from 0 up to (not including) 1")  # nan fails too


@contextlib.contextmanager
def filtered_stderr(drop: re.Pattern = NATIVE_LOG_LINE) -> Iterator[None]:
    """Route file descriptor 2 through a pipe and pass on every line ``drop`` does not match.

    Native libraries write to the descriptor, not to ``sys.stderr``, so only this catches them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not drop.match(line))
            if kept:
                os.write(saved, kept)
        if pending and not drop.match(pending):
            os.write(saved, pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # drops the pipe's last write end: the pump reads to the end and stops
        thread.join(timeout=10)
        os.close(read_end)
        os.close(saved)


def import_frameworks(*, torch: bool = False, keras: bool = False) -> None:
    """Import what a command needs, torch first (see ``parity._triton``), and TensorFlow's
    start-up banners filtered off the terminal."""
    if torch:
        import alexnet_torch  # noqa: F401
    if keras and "keras" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # what it does silence, it silences
        tensorflow_defaults()
        with filtered_stderr():
            import keras  # noqa: F401  (imports the backend, TensorFlow by default)


def tensorflow_defaults() -> None:
    """Turn TensorFlow's oneDNN kernels on for the commands, unless the user set
    ``TF_ENABLE_ONEDNN_OPTS`` (a ``0`` is kept). TensorFlow reads the variable once, when it loads,
    and by itself turns oneDNN on only on CPUs with AVX-512 VNNI or AMX; without it, on an AMD EPYC,
    Keras's training steps ran 2.5x slower (docs/benchmarks.md). Only the commands call this:
    importing the library leaves the environment alone."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While a ``--json`` command works, whatever anyone prints (torchvision's "Downloading ..."
    line, a native library) goes to stderr, so stdout holds the JSON alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(prog: str, body: Callable[[], tuple[int, object, str]], *, as_json: bool, debug: bool) -> int:
    """Run ``body`` -> (exit code, JSON payload, text) and print one of them; any exception becomes
    exit 2 and one line that says what went wrong (a traceback only with ``--debug``)."""
    try:
        with stdout_to_stderr() if as_json else contextlib.nullcontext():
            code, payload, text = body()
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", as_json, EXIT_INTERRUPTED)
    except Exception as err:  # every error is exit 2 with a message; --debug shows where
        if debug:
            import traceback

            traceback.print_exc()
        return _fail(prog, describe(err), as_json)
    if as_json:
        print(json.dumps(payload, indent=1))
    else:
        print(text)
    return code


# The framework modules a command may find missing: what each is, and pyproject.toml's extra
# that installs it (a Keras-only or torch-only install is a supported one, not a bug).
FRAMEWORK_MODULES = {"torch": ("PyTorch", "torch"), "torchvision": ("torchvision", "torch"),
                     "keras": ("Keras", "keras"), "tensorflow": ("TensorFlow", "keras"), "h5py": ("h5py", "keras")}


def missing_framework(err: ModuleNotFoundError) -> str | None:
    """What to install for a framework this install lacks; None for any other missing module."""
    root = (err.name or "").partition(".")[0]
    if root == "jax":
        return ("JAX is not installed, and KERAS_BACKEND names it: pip install 'jax[cpu]', or set "
                "KERAS_BACKEND=tensorflow")
    if root not in FRAMEWORK_MODULES:
        return None
    what, extra = FRAMEWORK_MODULES[root]
    return (f"{what} is not installed (no module named {root!r}), and this command needs it: "
            f"pip install 'alexnet-parity[{extra}]'")


def check_installed(*, torch: bool = False, keras: bool = False) -> None:
    """Refuse, before anything is written, a command whose framework this install lacks: found
    without importing it (Keras fixes its devices at import), reported as :func:`missing_framework`."""
    import importlib.util

    for module, wanted in (("torch", torch), ("torchvision", torch), ("keras", keras)):
        if wanted and importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def describe(err: BaseException) -> str:
    """One message for the user: ours as written, the system's with the path and what to do."""
    from alexnet_spec.messages import first_line

    if isinstance(err, ModuleNotFoundError) and (message := missing_framework(err)):
        return message
    if isinstance(err, (ValueError, TypeError, UsageError, FileNotFoundError, FileExistsError, IsADirectoryError)) or \
            getattr(err, "for_user", False):  # e.g. alexnet_torch.distributed.ReplicaLost
        return str(err).strip() or type(err).__name__
    if isinstance(err, MemoryError):
        return ("out of memory: the batch or the model does not fit in this machine's memory. Use a smaller "
                "--batch (or --size), or a machine with more memory.")
    if isinstance(err, KeyError):
        return f"missing entry {err}"
    if _is_network_error(err):
        return (f"could not reach the network ({first_line(err)}). Download the file on a machine with a "
                "network connection, or pass a local weight file.")
    if isinstance(err, OSError):
        where = f" {err.filename}" if err.filename else ""
        return f"cannot use{where}: {err.strerror or first_line(err)}. Check the path, its permissions and free space."
    return (f"unexpected {type(err).__name__}: {first_line(err)}. This is a bug in alexnet-parity: run again "
            "with --debug and report the traceback.")


def _is_network_error(err: BaseException) -> bool:
    import socket
    import urllib.error

    return isinstance(err, (urllib.error.URLError, socket.timeout, ConnectionError, socket.gaierror))


def _fail(prog: str, message: str, as_json: bool, code: int = EXIT_ERROR) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    else:
        print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def warn_unverified(prog: str, *paths) -> None:
    """One warning line on stderr for each weight file used that no ``.sha256`` sidecar vouched for."""
    from alexnet_spec.checksum import unverified

    for path in paths:
        if message := unverified(path):
            print(f"{prog}: warning: {message}", file=sys.stderr)


def wants(argv: list[str] | None, flag: str) -> bool:
    """Whether ``flag`` was given, read before parsing (so a usage error can honour --json)."""
    return flag in (sys.argv[1:] if argv is None else argv)
