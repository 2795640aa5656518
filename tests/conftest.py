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
