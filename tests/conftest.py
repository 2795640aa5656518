import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import logging  # noqa: E402

from parity._triton import keep_triton_safe  # noqa: E402

keep_triton_safe()  # loads triton before any test imports TensorFlow: parity/_triton.py

import pytest  # noqa: E402

logging.getLogger("tensorflow").setLevel(logging.ERROR)


def pytest_report_header(config):
    import keras

    return f"keras backend: {keras.backend.backend()}"  # tests/test_keras_backends.py looks for it


@pytest.fixture(scope="session", autouse=True)
def _leave_nothing_behind(request, tmp_path_factory):
    """A passing run leaves no files: the retention policy ("failed", pyproject) removes passed
    tests' tmp_path, but not the folders module and session fixtures make with tmp_path_factory
    (trained runs, weight files in every format, Caffe models: about 3 GB measured)."""
    yield
    if request.session.testsfailed == 0:
        import shutil

        shutil.rmtree(tmp_path_factory.getbasetemp(), ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _release_memory_after_each_module():
    """One pytest process runs every module: without this, what each module's models and traced
    Keras functions held stayed in it, and the full suite's process grew to 13.5 GB and was killed
    for memory (24 GB machine, with a test's child processes beside it). After each module:
    Keras's global state cleared, a garbage collection, and the freed heap handed back to the
    system (glibc keeps it otherwise)."""
    yield
    import gc
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].utils.clear_session(free_memory=True)
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to hand back this way
            pass


@pytest.fixture(scope="session")
def paper_torch():
    """A seeded paper model with every parameter randomized (session-wide: building costs ~1 s)."""
    import alexnet_torch
    from parity import randomize_torch

    return randomize_torch(alexnet_torch.build("paper"), seed=0).eval()


@pytest.fixture(scope="session")
def paper_keras(paper_torch):
    from parity import torch_to_keras

    return torch_to_keras(paper_torch)


@pytest.fixture(scope="session")
def paper_batch():
    from parity import random_batch

    return random_batch((2, 3, 227, 227), seed=1)


# The short run the shared trained runs are: one epoch of the cifar network on 48 digits.
SHORT_RUN = ("--variant", "cifar", "--data", "digits", "--limit", "48", "--batch-size", "16", "--epochs", "1",
             "--no-progress")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``trained_run(framework)``: the folder of one short alexnet-train run in that framework
    (SHORT_RUN), trained once per session when a test first asks for it and shared by every test
    that only reads it (evaluate, predict, port, plot). A test that resumes, overwrites or deletes
    runs trains its own."""
    import subprocess
    import sys

    from tests.reference import ROOT, subprocess_env

    folders = {}

    def get(framework: str):
        if framework not in folders:
            out = tmp_path_factory.mktemp(f"trained-{framework}") / "run"
            args = [sys.executable, "-m", "alexnet_cli.train", "--framework", framework, *SHORT_RUN, "--out", str(out)]
            done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600,
                                  env=subprocess_env(OMP_NUM_THREADS="1"))
            assert done.returncode == 0, f"alexnet-train --framework {framework} failed:\n{done.stderr[-4000:]}"
            folders[framework] = out
        return folders[framework]

    return get
