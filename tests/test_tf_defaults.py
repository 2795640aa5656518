"""TensorFlow's oneDNN switch: the commands turn it on before TensorFlow loads (a user's choice
kept), the library leaves the environment alone, and the parity checks hold either way."""

import json
import subprocess
import sys

import pytest

from tests.reference import ROOT, subprocess_env

# Records TF_ENABLE_ONEDNN_OPTS at the moment ``tensorflow`` is first imported: TensorFlow reads it
# then, once, so a value set any later changes nothing.
SPY = """
import importlib.abc, json, os, sys
seen = {}
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" and "at_import" not in seen:
            seen["at_import"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
        return None
sys.meta_path.insert(0, Spy())
"""
REPORT = '\nprint(json.dumps({"at_import": seen.get("at_import", "not imported"), '\
         '"after": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}))\n'
COMMANDS = "from alexnet_cli.console import import_frameworks\nimport_frameworks(keras=True)"


def onednn_setting(body: str, **env) -> dict:
    """What TensorFlow saw, and what the environment holds afterwards, in a child running ``body``."""
    done = subprocess.run([sys.executable, "-c", SPY + body + REPORT], capture_output=True, text=True,
                          cwd=ROOT, env=subprocess_env(**env), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("body, env, expected", [
    (COMMANDS, {}, "1"),  # the commands' default
    (COMMANDS, {"TF_ENABLE_ONEDNN_OPTS": "0"}, "0"),  # the user's 0 is kept
    ("import parity, parity.models, alexnet_keras", {}, None),  # the library sets nothing
], ids=["commands", "user-off", "library"])
def test_commands_turn_onednn_on_before_tensorflow_loads_and_the_library_does_not(body, env, expected):
    assert onednn_setting(body, **env) == {"at_import": expected, "after": expected}


def parity_check(setting: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parity", "check", *args], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(TF_ENABLE_ONEDNN_OPTS=setting, OMP_NUM_THREADS="1"), timeout=600)


@pytest.mark.parametrize("setting", ["1", "0"])
def test_cifar_parity_holds_with_onednn_on_and_off(setting):
    """oneDNN's kernels sum in another order: the check's tolerance must hold in both roundings."""
    done = parity_check(setting, "--variant", "cifar", "--batch", "1")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


@pytest.mark.slow  # six checks, each a fresh process (minutes); test_cifar_parity_holds_with_onednn_on_and_off is make test's
@pytest.mark.parametrize("setting", ["1", "0"])
@pytest.mark.parametrize("args", [("--variant", "cifar"), ("--variant", "paper"), ("--variant", "cifar", "--train-step")],
                         ids=["cifar", "paper", "cifar-train-step"])
def test_parity_checks_hold_with_onednn_on_and_off(setting, args):
    done = parity_check(setting, *args)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
