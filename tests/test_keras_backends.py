"""alexnet_keras runs on any Keras backend, kept true by the suite: the Keras-side and parity tests
run again on jax and torch (Keras fixes its backend at import, so each runs in a child pytest), and
a ``.safetensors`` written by torch is read by a process that can import only keras and jax.

The two whole children are the slow tier (``make test-all``); the fast tier (``make test``) keeps a
handful of those tests in one child on the torch backend, and the keras-and-jax-only reader."""

import importlib.util
import json
import sys
import textwrap

import numpy as np
import pytest
import torch

import alexnet_torch
from parity import random_batch, randomize_torch
from parity.compare import DEFAULT_RTOL
from tests.reference import (
    import_blocker,
    run_in_group,
    subprocess_env,
    torch_float64,
)

OTHER_BACKENDS = ("jax", "torch")

# What the child runs on each backend: building every variant, predict, porting both ways, compare
# (every variant, and that it fails where a convention is wrong), .keras / .weights.h5 / .safetensors
# files and a fresh process reloading them, the LRN layer's numerics, Keras's BatchNorm against ours
# (cifar), and the CLI in and out of process. Tests that hold for one backend only are skipped there
# with the reason. Left out, to keep the suite's time: hypothesis sweeps that repeat a fixed-seed
# test, the training step and tests that touch no Keras code. Timings per backend: docs/ci.md.
SELECTION = (
    "tests/test_paper_keras.py",
    "tests/test_paper_parity.py",
    "tests/test_torchvision_keras.py",
    "tests/test_torchvision_parity.py",
    "tests/test_cifar_layers.py",
    "tests/test_cifar_models.py",
    "tests/test_files_and_cli.py",
    "tests/test_bad_input.py",
    "tests/test_torchvision_files.py::test_converted_weights_load_in_keras",
    "tests/test_torchvision_files.py::test_keras_only_path_runs_without_torch",
    "tests/test_torchvision_files.py::test_bad_weight_files_are_refused",
    "tests/test_loading_safety.py::test_a_weights_h5_that_does_not_fit_leaves_the_model_as_it_was",
    "tests/test_loading_safety.py::test_a_keras_softmax_head_is_not_ported_to_a_logits_model",
    "tests/test_fast_paths.py::test_keras_lrn_equals_pytorch_in_float64",
    "tests/test_fast_paths.py::test_keras_models_leave_xla_to_keras_until_optimized",
    "tests/test_fast_paths.py::test_fast_layers_compute_what_keras_layers_compute",
    "tests/test_fast_paths.py::test_optimized_keras_model_is_the_float64_network",
    "tests/test_fast_paths.py::test_optimize_takes_any_functional_or_sequential_model",
    "tests/test_fast_paths.py::test_optimized_and_plain_models_read_each_others_weight_files",
    "tests/test_fast_paths.py::test_keras_predict_is_keras_predict",
)
DESELECT = (
    "tests/test_paper_parity.py::test_parity_holds_for_any_batch_classes_and_weights",
    "tests/test_cifar_models.py::test_parity_over_batch_sizes_and_weights",
    "tests/test_files_and_cli.py::test_check_with_a_too_strict_tolerance_exits_1",
)
CHILD_TIMEOUT_S = 1800  # measured 837 s (jax) and about 620 s (torch) on 2 cores shared with other runs


def _require(module):
    assert importlib.util.find_spec(module), f"{module} is not installed: it is in the test extra (pip install -e '.[test]')"


# The fast tier's child: a cifar model built, run and ported both ways against float64, Keras's
# BatchNorm numerics against ours, and the LRN layer serialized, on the torch backend.
FAST_SELECTION = (
    "tests/test_cifar_models.py::test_inference_parity_against_float64",
    "tests/test_cifar_models.py::test_round_trip_is_bit_identical",
    "tests/test_cifar_layers.py::test_batchnorm_trains_like_keras",
    "tests/test_paper_keras.py::test_lrn_layer_serializes",
)
FAST_CHILD_TIMEOUT_S = 600


def _child_pytest(backend, selection, deselect, timeout):
    _require(backend)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs", "--durations=5", *selection,
            *(f"--deselect={node}" for node in deselect)]  # not -q: it hides the header
    code, out, _ = run_in_group(args, env=subprocess_env(KERAS_BACKEND=backend), timeout=timeout, merge_output=True)
    assert f"keras backend: {backend}" in out, f"the child did not run on {backend}:\n{out[:3000]}"
    assert code == 0, f"on KERAS_BACKEND={backend}, exit {code}; the child's output ends:\n{out[-8000:]}"
    print(out[-1500:])  # its slowest tests and summary line, shown with -rP
    return out


@pytest.mark.slow
@pytest.mark.timeout(CHILD_TIMEOUT_S + 120)  # the child's own limit ends it first, with its output
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_keras_and_parity_tests_pass_on_backend(backend):
    _child_pytest(backend, SELECTION, DESELECT, CHILD_TIMEOUT_S)


def test_a_handful_of_keras_and_parity_tests_pass_on_the_torch_backend():
    out = _child_pytest("torch", FAST_SELECTION, (), FAST_CHILD_TIMEOUT_S)
    assert "6 passed" in out, out[-1500:]


KERAS_AND_JAX_ONLY = import_blocker("torch", "torchvision", "tensorflow") + textwrap.dedent(
    """
    import json, pathlib

    import keras
    import numpy as np

    import alexnet_keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    where = pathlib.Path(sys.argv[1])
    cases = json.loads((where / "cases.json").read_text())
    for case in cases:
        name = case["name"]
        model = alexnet_keras.build(case["variant"], **case["options"])
        alexnet_keras.load_weights(model, where / f"{name}.safetensors")
        x = np.load(where / f"{name}.x.npy")
        for out in (keras.ops.convert_to_numpy(model(x, training=False)), model.predict(x, verbose=0)):
            for ref_name in ("torch", "f64"):
                ref = np.load(where / f"{name}.{ref_name}.npy")
                err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
                assert err < case["rtol"], (name, ref_name, err)
        print(name, "agrees")
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
    assert not loaded, loaded
    print("keras and jax only: ok")
    """
)

CASES = [
    ("paper", "paper", {"lrn": "paper"}, (2, 3, 227, 227)),
    ("cifar", "cifar", {"logits": True}, (4, 3, 32, 32)),
    ("torchvision", "torchvision", {}, (2, 3, 224, 224)),
]


def test_safetensors_from_torch_read_with_only_keras_and_jax(tmp_path):
    """torch writes the files and the reference outputs; a child that cannot import torch or
    TensorFlow loads them into alexnet_keras on jax and must compute the same logits."""
    _require("jax")
    cases = []
    for seed, (name, variant, options, shape) in enumerate(CASES):
        module = randomize_torch(alexnet_torch.build(variant, **options), seed=seed).eval()
        alexnet_torch.save_weights(module, tmp_path / f"{name}.safetensors")
        x = random_batch(shape, seed=seed + 10)
        with torch.no_grad():
            np.save(tmp_path / f"{name}.torch.npy", module(torch.from_numpy(x)).numpy())
        np.save(tmp_path / f"{name}.f64.npy", torch_float64(module, x))
        np.save(tmp_path / f"{name}.x.npy", np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        cases.append({"name": name, "variant": variant, "options": options, "rtol": DEFAULT_RTOL})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    args = [sys.executable, "-c", KERAS_AND_JAX_ONLY, str(tmp_path)]
    code, out, _ = run_in_group(args, env=subprocess_env(KERAS_BACKEND="jax"), timeout=600, merge_output=True)
    assert code == 0 and "keras and jax only: ok" in out, out[-4000:]
    assert [line.split()[0] for line in out.splitlines() if line.endswith(" agrees")] == [c[0] for c in CASES]
