"""Training in both frameworks: the same batches, resume after a kill, the run folder, bad input."""

import csv
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from alexnet_training import runs
from alexnet_training.augment import Pipeline
from alexnet_training.data import load_digits, subset
from alexnet_training.recipes import CIFAR
from tests.reference import ROOT, subprocess_env

SMALL = ["--variant", "cifar", "--data", "digits", "--limit", "48", "--batch-size", "16", "--no-progress"]


def train_cmd(framework, out, *extra):
    return [sys.executable, "-m", "alexnet_cli.train", "--framework", framework, *SMALL, "--out", str(out), *extra]


def run_cli(args, timeout=600):
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(OMP_NUM_THREADS="1"),
                          timeout=timeout)


def test_torch_dataloader_with_workers_yields_the_keras_pydataset_batches():
    import torch  # noqa: F401  (first: see parity._triton)

    from alexnet_torch.training import data_loader, set_epoch

    train, _ = load_digits()
    pipeline = Pipeline(subset(train, 100), CIFAR.augment, train=True, seed=7, batch_size=16)
    loader = data_loader(pipeline, workers=2)
    torch_batches = {}
    for epoch in (0, 1):
        set_epoch(loader, epoch)
        torch_batches[epoch] = [(x.numpy().transpose(0, 2, 3, 1), y.numpy()) for x, y in loader]

    from alexnet_keras.training import BatchSequence

    sequence = BatchSequence(Pipeline(subset(train, 100), CIFAR.augment, train=True, seed=7, batch_size=16))
    assert len(sequence) == len(torch_batches[0]) == 6
    for epoch in (0, 1):
        sequence.epoch = epoch
        for number, (tx, ty) in enumerate(torch_batches[epoch]):
            kx, ky = sequence[number]
            np.testing.assert_array_equal(ty, ky)
            np.testing.assert_allclose(tx, kx, rtol=0, atol=float(np.spacing(np.float32(np.abs(kx).max()))))
    # the epochs differ (order and crops): equality above is not two constant streams
    assert not np.array_equal(torch_batches[0][0][0], torch_batches[1][0][0])


@pytest.mark.parametrize("workers", [0, 2])
def test_keras_fit_with_worker_processes_trains_on_the_pipelines_batches(tmp_path, workers):
    """``alexnet_keras.training.train(workers=N)``: fit's steps get ``Pipeline.batch(number, epoch)``
    in order, epoch after epoch, whether the main process or N worker processes build them (the
    workers start after EpochSetter has set the epoch, or epoch 1 would get epoch 0's crops)."""
    import keras

    from alexnet_keras.training import train

    class Recorder(keras.Model):
        """A small network that keeps every batch it trains on (eagerly, so the arrays are real)."""

        def __init__(self):
            super().__init__()
            self.pool, self.dense, self.batches = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10), []

        def call(self, x, training=False):
            if training and not keras.utils.is_keras_tensor(x):
                self.batches.append(keras.ops.convert_to_numpy(x))
            return self.dense(self.pool(x))

        def compile(self, **kwargs):
            super().compile(**kwargs | {"run_eagerly": True, "jit_compile": False})

    train_data, val_data = load_digits()
    pipeline = Pipeline(subset(train_data, 100), CIFAR.augment, train=True, seed=7, batch_size=16)
    val = Pipeline(subset(val_data, 20), CIFAR.augment, train=False, seed=7, batch_size=16)
    config = runs.RunConfig(framework="keras", variant="cifar", recipe="cifar", data="digits", epochs=2,
                            batch_size=16, seed=7, num_classes=10, options={}, lr=0.01)
    model = Recorder()
    model(np.zeros((1, 32, 32, 3), np.float32))  # built: fit's first call is its first step
    train(model, CIFAR, pipeline, val, tmp_path, config, workers=workers, progress=False)
    expected = [pipeline.batch(number, epoch)[0] for epoch in (0, 1) for number in range(pipeline.num_batches)]
    assert len(model.batches) == len(expected) == 12
    for seen, batch in zip(model.batches, expected):
        np.testing.assert_array_equal(seen, batch)


def _wait_for_epoch(proc, metrics, epoch, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.is_file() and any(r["epoch"] == str(epoch) for r in csv.DictReader(open(metrics))):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before epoch {epoch}: {proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail(f"no epoch {epoch} within {timeout}s")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_resume_after_sigkill_ends_at_the_same_weights(tmp_path, framework):
    from safetensors.numpy import load_file

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = run_cli(train_cmd(framework, whole, "--epochs", "3"))
    assert done.returncode == 0, done.stderr

    proc = subprocess.Popen(train_cmd(framework, killed, "--epochs", "3"), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env(OMP_NUM_THREADS="1"))
    try:
        _wait_for_epoch(proc, killed / "metrics.csv", 1, timeout=600)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert not (killed / "model.safetensors").exists()  # it really died mid-run
    stopped_at = len(runs.read_metrics(killed))
    assert stopped_at < 3

    again = run_cli(train_cmd(framework, killed, "--epochs", "3"))
    assert again.returncode == 2 and "--resume" in again.stderr  # never overwritten without it
    resumed = run_cli(train_cmd(framework, killed, "--epochs", "3", "--resume"))
    assert resumed.returncode == 0, resumed.stderr

    a, b = load_file(whole / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:  # bit for bit
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    rows_a, rows_b = runs.read_metrics(whole), runs.read_metrics(killed)
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}


def test_run_folder_files_and_schema(trained_run):
    out = trained_run("torch")  # SMALL, one epoch: shared with the tests that only read a run (conftest.py)
    with open(out / "metrics.csv") as f:
        header = f.readline().strip().split(",")
    assert tuple(header) == runs.METRICS
    assert (out / "model.safetensors.sha256").is_file() and (out / "checkpoint.pt").is_file()
    config = runs.read_config(out)
    assert (config.variant, config.num_classes, config.options) == ("cifar", 10, {"logits": True})
    # the final weights are a file alexnet-parity reads and checks in both frameworks
    check = run_cli([sys.executable, "-m", "parity", "check", "--torch", str(out / "model.safetensors"),
                     "--keras", str(out / "model.safetensors")])
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "layout", "corrupt", "classes", "variant"])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, case):
    from PIL import Image

    out = tmp_path / "run"
    data = tmp_path / "data"
    extra = []
    if case == "missing":
        spec = f"imagefolder:{tmp_path / 'nope'}"
    elif case == "empty":
        data.mkdir()
        spec = f"cifar10:{data}"
    elif case == "layout":
        (data / "cat").mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(data / "cat" / "a.png")
        spec = f"imagefolder:{data}"  # CLASS/ directly, no train/ and val/
    elif case == "corrupt":
        for split in ("train", "val"):
            for cls in ("a", "b"):
                (data / split / cls).mkdir(parents=True)
                Image.new("RGB", (40, 40), (1, 2, 3)).save(data / split / cls / "x.png")
        (data / "val" / "b" / "bad.jpg").write_bytes(b"\xff\xd8\xffnot really a jpeg")
        spec = f"imagefolder:{data}"
    else:
        spec = "digits"
        extra = ["--num-classes", "7"] if case == "classes" else []
    if case == "variant":  # resume a cifar run as another variant
        first = run_cli(train_cmd("torch", out, "--epochs", "1"))
        assert first.returncode == 0, first.stderr
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        args = [sys.executable, "-m", "alexnet_cli.train", "--framework", "torch", "--variant", "paper", "--recipe",
                "paper", "--data", "digits", "--out", str(out), "--resume"]
    else:
        args = [sys.executable, "-m", "alexnet_cli.train", "--framework", "torch", "--variant", "cifar", "--data",
                spec, "--out", str(out), "--epochs", "1", *extra]
    result = run_cli(args, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alexnet-train: error: "), result.stderr
    expected = {"missing": "no such folder", "empty": "missing data_batch_1", "layout": "train/ and val/",
                "corrupt": "bad.jpg", "classes": "--num-classes 7", "variant": "variant"}[case]
    assert expected in lines[0]
    if case == "variant":
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    else:
        assert not out.exists()


def test_train_steps_reports_per_step_agreement():
    from parity.steps import DRIFT_RTOL, check_train_steps

    report = check_train_steps("cifar", steps=3, batch=4, seed=0)
    assert len(report.losses) == 3
    first = report.losses[0]
    # step 1 starts from the same weights and batch: the forward pass's fp32 rounding apart (batch
    # statistics over 4 samples lose digits: ~6e-6 relative measured), inside the drift limit
    assert abs(first["torch"] - first["keras"]) < DRIFT_RTOL * abs(first["float64"])
    assert report.ok, str(report)
    text = str(report)
    assert "|torch-keras|" in text and report.to_dict()["drift"].keys() == {"torch_vs_keras", "torch_vs_float64",
                                                                           "keras_vs_float64"}


def test_train_steps_fails_when_keras_sees_other_batches(monkeypatch):
    """Feed Keras mirrored images: its run parts from torch at step 1 while torch tracks float64."""
    import parity.steps as T

    original = T._keras_trainer

    def mirrored(*args):
        step = original(*args)
        return lambda x, y: step(np.ascontiguousarray(x[:, :, :, ::-1]), y)

    monkeypatch.setattr(T, "_keras_trainer", mirrored)
    report = T.check_train_steps("cifar", steps=2, batch=4, seed=0)
    assert report.drift["torch_vs_keras"] == 1 and not report.ok, str(report)


def test_eval_cli_reads_a_trained_file_in_both_frameworks(trained_run, tmp_path):
    out = trained_run("torch")
    results = {}
    for framework in ("torch", "keras"):
        r = run_cli([sys.executable, "-m", "alexnet_cli.evaluate", "--framework", framework, "--weights",
                     str(out / "model.safetensors"), "--data", "digits", "--limit", "30", "--crops", "both", "--json"])
        assert r.returncode == 0, r.stderr
        import json

        results[framework] = json.loads(r.stdout)
    for crops in ("center", "10crop"):
        assert results["torch"][crops]["top1"] == results["keras"][crops]["top1"]
        assert results["torch"][crops]["top5"] == results["keras"][crops]["top5"]
    wrong = run_cli([sys.executable, "-m", "alexnet_cli.evaluate", "--framework", "keras", "--weights",
                     str(out / "model.safetensors"), "--data", f"cifar10:{tmp_path / 'none'}"])
    assert wrong.returncode == 2 and "no such folder" in wrong.stderr
