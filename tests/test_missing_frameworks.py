"""A Keras-only or torch-only install is a supported one: a command that needs the missing
framework says which it is and which extra installs it (exit 2, one line), writes nothing, and
never calls it a bug. The missing packages are hidden from every import finder of a child
interpreter: ``import torch`` raises ModuleNotFoundError and ``find_spec`` says None, as on an
install without them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.reference import ROOT, subprocess_env

CHILD = """
import contextlib, io, json, sys
blocked, commands = json.loads(sys.argv[1])

class Without:  # every finder, blind to the blocked packages: they import as on an install without them
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)

sys.meta_path[:] = [Without(finder) for finder in sys.meta_path]
from alexnet_cli import evaluate, parity, predict, train
mains = {"alexnet-parity": parity.main, "alexnet-train": train.main, "alexnet-predict": predict.main,
         "alexnet-eval": evaluate.main}
results = []
for prog, argv in commands:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = mains[prog](argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""

KERAS_ONLY = ["torch", "torchvision"]
TORCH_ONLY = ["keras", "tensorflow", "jax"]
TORCH_MISSING = ("PyTorch is not installed (no module named 'torch'), and this command needs it: "
                 "pip install 'alexnet-parity[torch]'")
KERAS_MISSING = ("Keras is not installed (no module named 'keras'), and this command needs it: "
                 "pip install 'alexnet-parity[keras]'")


def _run_without(blocked, commands):
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([blocked, commands])], capture_output=True,
                          text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("blocked", [KERAS_ONLY, TORCH_ONLY], ids=["keras-only", "torch-only"])
def test_a_missing_framework_is_named_with_its_extra(tmp_path, blocked):
    photo, weights = tmp_path / "photo.png", tmp_path / "never-read.pt"
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(photo)
    weights.write_bytes(b"")
    train = ["--variant", "cifar", "--data", "digits", "--limit", "32", "--epochs", "1", "--out"]
    if blocked is KERAS_ONLY:
        commands = [("alexnet-parity", ["check", "--variant", "cifar"]),
                    ("alexnet-train", ["--framework", "torch", *train, str(tmp_path / "run")]),
                    ("alexnet-predict", [str(photo), "--framework", "keras", "--weights", "random"])]
        expected = f"error: {TORCH_MISSING}"
    else:
        commands = [("alexnet-train", ["--framework", "keras", *train, str(tmp_path / "run")]),
                    ("alexnet-eval", ["--framework", "keras", "--weights", str(weights), "--variant", "cifar",
                                      "--data", "digits", "--limit", "32"])]
        expected = f"error: {KERAS_MISSING}"
    for (prog, argv), (code, err) in zip(commands, _run_without(blocked, commands)):
        assert (code, err) == (2, f"{prog}: {expected}\n"), (prog, argv)
    assert sorted(tmp_path.iterdir()) == [weights, photo]  # the run folder was not started
