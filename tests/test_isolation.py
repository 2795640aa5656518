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
        ("alexnet_training.images", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.imagenet", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.checksum", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.files", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.tables", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.messages", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_spec.shapes", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_training.recipes", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_training.data", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_training.augment", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_training.runs", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_training.precise_bn", ("torch", "torchvision", "tensorflow", "keras")),
        ("alexnet_torch.training", ("tensorflow", "keras")),
        ("alexnet_keras.training", ("torch", "torchvision")),
        ("alexnet_keras.distributed", ("torch", "torchvision")),
    ],
)
def test_package_imports_only_its_framework(pkg, banned):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(pkg=pkg, banned=banned)],
        capture_output=True, text=True, check=True, env=subprocess_env(),
    )
    assert out.stdout.strip() == "", f"import {pkg} pulled in {out.stdout.strip()}"


def test_keras_model_code_uses_no_tensorflow():
    """Rule 3: keras.layers and keras.ops only, so any backend runs it. The one exception,
    ``distributed.py`` (tf.distribute is TensorFlow's engine), imports TensorFlow only inside the
    functions of its TensorFlow engines."""
    import pathlib

    import alexnet_keras

    for path in pathlib.Path(alexnet_keras.__file__).parent.glob("*.py"):
        text = path.read_text()
        if path.name == "distributed.py":
            lines = text.splitlines()
            assert not [line for line in lines if line.startswith(("import tensorflow", "import jax", "from jax",
                                                                   "from tensorflow"))], path
            assert "    import tensorflow as tf" in lines
            continue
        assert "import tensorflow" not in text and "tf." not in text, path


def test_importing_keras_first_then_torch_does_not_crash():
    """TensorFlow first, then torchvision: triton would segfault in dlopen (tensorflow#124205),
    measured as exit -11 here; alexnet_torch keeps triton out in exactly that order."""
    code = ("import alexnet_keras, alexnet_torch, torch\n"
            "model = alexnet_torch.build('torchvision')\n"
            "torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "print('alive')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert out.returncode == 0 and "alive" in out.stdout, (out.returncode, out.stderr[-2000:])
