"""Each framework package imports only its own framework (checked in a fresh interpreter)."""

import subprocess
import sys

import pytest

from tests.reference import subprocess_env

PROBE = "import sys, {pkg}; print(' '.join(sorted(m for m in {banned!r} if m in sys.modules)))"


@pytest.mark.parametrize(
    "pkg, banned",
    [
        ("alexnet_keras", ("torch", "torchvision")),
        ("alexnet_torch", ("tensorflow", "keras")),
        ("alexnet_spec", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.port", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.exchange", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.images", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.imagenet", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.checksum", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.files", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.tables", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.messages", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.recipes", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.data", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.augment", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.runs", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_torch.training", ("tensorflow", "keras")),
        ("alexnet_keras.training", ("torch", "torchvision")),
        ("alexnet_spec.recipes", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.data", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.augment", ("torch", "torchvision", "tensorflow", "keras")),
    ],
)
def test_package_imports_only_its_framework(pkg, banned):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(pkg=pkg, banned=banned)],
        capture_output=True, text=True, check=True, env=subprocess_env(),
    )
    assert out.stdout.strip() == "", f"import {pkg} pulled in {out.stdout.strip()}"


def test_keras_model_code_uses_no_tensorflow():
    """Rule 3: keras.layers and keras.ops only, so any backend runs it."""
    import pathlib

    import alexnet_keras

    for path in pathlib.Path(alexnet_keras.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import tensorflow" not in text and "tf." not in text, path
