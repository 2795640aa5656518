"""Helpers shared by tests: the source document's PyTorch class, verbatim, and error measures."""

import contextlib
import os
import pathlib
import signal
import subprocess
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn


class DocumentAlexNet(nn.Module):
    """Copied from the source document ("Building from Scratch", PyTorch), unchanged."""

    def __init__(self, num_classes=1000):
        super(DocumentAlexNet, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=0),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=0.0001, beta=0.75),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=0.0001, beta=0.75),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), 256 * 6 * 6)
        x = self.classifier(x)
        return x


def rel_error(reference, value) -> float:
    """Max absolute error relative to the reference's scale (max |reference|)."""
    reference = np.asarray(reference, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    return float(np.max(np.abs(reference - value)) / np.max(np.abs(reference)))


def torch_float64(module, x_nchw):
    """The same weights run in float64: the reference both frameworks are judged against."""
    import copy

    ref = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return ref(torch.from_numpy(np.asarray(x_nchw, dtype=np.float64))).numpy()


ROOT = pathlib.Path(__file__).resolve().parent.parent


def assert_same_network(reference, ours, x, *, rtol: float = 1e-5) -> None:
    """``ours`` computes what ``reference`` computes: our fast paths (channels_last, blocked LRN,
    transposed Linear) round differently from the plain NCHW path, so both are judged at fp32's floor against a
    float64 run of the reference's weights, and against each other."""
    with torch.no_grad():
        ours_y, ref_y = ours(x).numpy(), reference(x).numpy()
    f64 = torch_float64(reference, x.numpy())
    assert rel_error(f64, ref_y) < rtol and rel_error(f64, ours_y) < rtol
    assert rel_error(ref_y, ours_y) < rtol


def subprocess_env(**extra) -> dict:
    """A clean environment for child interpreters that still imports this checkout's code, on the
    Keras backend this run tests (tests/conftest.py)."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
            "KERAS_BACKEND": KERAS_BACKEND, **extra}


def run_in_group(args, *, env: dict, timeout: float, merge_output: bool = False) -> tuple[int, str, str]:
    """Run ``args`` in its own process group, so workers and grandchildren share its fate: past
    ``timeout`` the whole group is killed and the test fails with the end of the output.
    Returns (exit code, stdout, stderr); with ``merge_output`` stderr is folded into stdout."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(map(str, args))} ran past {timeout} s; its output ends:\n{(err or out)[-6000:]}")
    return proc.returncode, out, err or ""


# The Keras backend of this run (tests/conftest.py sets it before Keras is imported). The suite runs
# on TensorFlow, and the Keras-side tests again on jax and torch (tests/test_keras_backends.py).
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def float64_on_every_backend():
    """JAX computes in float64 only with ``jax_enable_x64`` (off by default: float64 arrays become
    float32); the other backends always do."""
    if KERAS_BACKEND != "jax":
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield


def tensorflow_only(why: str):
    """Skip a test on the other Keras backends, saying why it exists for TensorFlow alone."""
    return pytest.mark.skipif(KERAS_BACKEND != "tensorflow", reason=f"TensorFlow backend only: {why}")


def import_blocker(*blocked: str) -> str:
    """Code to run first in a child interpreter: importing ``blocked`` (or a submodule) raises
    ImportError, as if they were not installed, and the child proves it. A finder on sys.meta_path,
    not ``sys.modules[name] = None``: libraries that look into sys.modules for torch (scipy's array
    API helpers, which jax imports) then find nothing rather than None."""
    return textwrap.dedent(
        f"""
        import sys

        BLOCKED = {blocked!r}
        already = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not already, f"imported before the blocker: {{already}}"


        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"{{name}} is blocked in this test", name=name)
                return None


        sys.meta_path.insert(0, Blocked())
        for name in BLOCKED:
            try:
                __import__(name)
            except ImportError:
                pass
            else:
                raise AssertionError(f"import {{name}} worked; the blocker does not")
        """
    )
