"""Each framework package imports only its own framework, checked in a fresh interpreter per floor:
one imports every module of the numpy packages, one every module of ``alexnet_torch``, one every
module of ``alexnet_keras`` (found with pkgutil, so a new module is covered without a list here).
``tests/test_layout.py`` checks the same floors statically, import by import."""

import subprocess
import sys

import pytest

from tests.reference import subprocess_env

# Imports the packages and every module below them, then prints which banned modules got loaded.
PROBE = """
import importlib, pkgutil, sys
packages, banned = {packages!r}, {banned!r}
names = []
for package in packages:
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print("imported", " ".join(names))
print("banned", " ".join(sorted(m for m in banned if m in sys.modules)))
"""

FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "jax")


@pytest.mark.parametrize(
    "packages, banned",
    [
        (("alexnet_spec", "alexnet_training"), FRAMEWORKS),
        (("alexnet_torch",), ("tensorflow", "keras", "jax")),
        (("alexnet_keras",), ("torch", "torchvision")),
    ],
    ids=["numpy", "torch", "keras"],
)
def test_package_imports_only_its_framework(packages, banned):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(packages=packages, banned=banned)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.stdout.splitlines())
    imported = lines["imported"].split()
    assert len(imported) > len(packages), f"pkgutil found no modules under {packages}: {imported}"
    assert lines["banned"] == "", f"importing {imported} pulled in {lines['banned']}"


def test_keras_model_code_uses_no_tensorflow():
    """Rule 3: keras.layers and keras.ops only, so any backend runs it. Two exceptions import
    TensorFlow only inside the functions that run on its backend: ``distributed.py``
    (tf.distribute is TensorFlow's engine) and ``optim.py`` (XLA compiles the SGD update there;
    other backends run Keras's own ops)."""
    import pathlib

    import alexnet_keras

    for path in pathlib.Path(alexnet_keras.__file__).parent.glob("*.py"):
        text = path.read_text()
        if path.name in ("distributed.py", "optim.py"):
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
