"""Data-parallel Keras training (alexnet_keras.distributed): two replicas equal one process on each
engine, the CLI's distributed run writes the single-process run folder, a dead worker stops the job
within a stated time and --resume continues it. Every child is bounded in time and killed on failure."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alexnet_training import runs
from parity.replicas_keras import FLOOR_FACTOR, tf_mirrored, tf_multi_worker
from tests.reference import ROOT, run_in_group, subprocess_env

SMALL = ["--variant", "cifar", "--data", "digits", "--limit", "64", "--batch-size", "16", "--no-progress"]


def _show(result):
    line = (f"{result['engine']}, {result['variant']}, {result['replicas']} replicas x {result['replica_batch']} vs one "
            f"process x {result['batch']}, {result['steps']} SGD steps: difference {result['difference']:.2e} "
            f"(worst {result['worst_variable']}), fp32 floor {result['fp32_floor']:.2e}, ratio {result['ratio']:.2f}, "
            f"replicas vs float64 {result['replicas_vs_float64']:.2e}")
    if "difference_without_sync" in result:
        line += f"; without synchronized BatchNorm {result['difference_without_sync']:.2e}"
    print(line + f" [{result['seconds']} s]")


def _check(result):
    _show(result)
    assert result["fp32_floor"] > 0, result  # a zero floor would mean the float64 run was not float64
    assert result["ok"] and result["difference"] <= FLOOR_FACTOR * result["fp32_floor"], result
    # and no further from float64 than one fp32 process is
    assert result["replicas_vs_float64"] <= FLOOR_FACTOR * result["fp32_floor"], result


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_devices_equals_one_process():
    result = tf_mirrored("cifar", 2, 2, 8, 0)
    _check(result)
    # without synchronization each replica normalizes by its own 4 images: not one process's step
    assert result["difference_without_sync"] > FLOOR_FACTOR * result["fp32_floor"], result
    assert result["replicas_vs_float64_without_sync"] > FLOOR_FACTOR * result["fp32_floor"], result


@pytest.mark.slow
def test_multi_worker_strategy_with_two_local_workers_equals_one_process():
    _check(tf_multi_worker("cifar", 2, 2, 8, 0))


@pytest.mark.slow
def test_jax_data_parallel_on_two_host_devices_equals_one_process():
    """No synchronization is set on JAX: that the sharded batch's statistics are global is measured.
    Run as users run it, through ``alexnet-parity check --replicas``."""
    code, out, err = _run([sys.executable, "-m", "parity", "check", "--replicas", "2", "--variant", "cifar",
                           "--engine", "jax DataParallel", "--steps", "2", "--batch", "8", "--json"], timeout=900)
    assert code == 0, err[-4000:]
    (report,) = json.loads(out)["reports"]
    assert list(report["rows"]) == ["jax DataParallel"] and report["ok"]
    _check(report["rows"]["jax DataParallel"])


# --- the CLI --------------------------------------------------------------------------------------


def _train(out, *extra):
    return [sys.executable, "-m", "alexnet_cli.train", "--framework", "keras", *SMALL, "--out", str(out), *extra]


def _run(args, timeout, **env):
    """``args`` in its own process group (the local workers join it); the group is killed on timeout."""
    return run_in_group(args, env=subprocess_env(OMP_NUM_THREADS="1", **env), timeout=timeout)


def _alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]


def _state(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone"


@pytest.mark.slow
@pytest.mark.parametrize("kind, backend", [("mirrored", "tensorflow"), ("data-parallel", "jax")])
def test_distributed_cli_run_writes_the_single_process_run_folder(tmp_path, kind, backend):
    code, out, err = _run(_train(tmp_path / "run", "--epochs", "1", "--distribute", kind, "--devices", "2",
                                 "--json"), timeout=900, KERAS_BACKEND=backend)
    assert code == 0, err[-4000:]
    payload = json.loads(out)
    assert "2 replicas" in payload["distribute"], payload
    with open(tmp_path / "run" / runs.METRICS_FILE, newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == runs.METRICS
    rows = runs.read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1] and 0.0 <= rows[0]["val_top1"] <= 1.0
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        runs.RUN_FILE, runs.METRICS_FILE, runs.CHECKPOINTS["keras"], runs.FINAL_WEIGHTS, runs.FINAL_WEIGHTS + ".sha256"}
    config = runs.read_config(tmp_path / "run")
    assert config.batch_size == 16  # the global batch, not the replicas' 8


@pytest.mark.parametrize("extra, env, expected", [
    (["--distribute", "data-parallel"], {"KERAS_BACKEND": "tensorflow"}, "KERAS_BACKEND=jax"),
    (["--distribute", "mirrored"], {"KERAS_BACKEND": "jax"}, "KERAS_BACKEND=tensorflow"),
    (["--devices", "2"], {}, "--distribute"),
    (["--distribute", "mirrored", "--devices", "3"], {}, "split evenly over 3"),
    (["--distribute", "multi-worker"], {}, "TF_CONFIG"),
    (["--distribute", "multi-worker"], {"TF_CONFIG": "{\"cluster\": 1}"}, "TF_CONFIG"),
])
def test_distribution_requests_that_cannot_run_are_one_line_exit_2(tmp_path, extra, env, expected):
    code, out, err = _run(_train(tmp_path / "run", *extra), timeout=300, **env)
    assert code == 2, (out, err[-3000:])
    assert expected in err, err[-3000:]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_distribute_is_keras_only(tmp_path):
    args = [sys.executable, "-m", "alexnet_cli.train", "--framework", "torch", *SMALL, "--out", str(tmp_path / "r"),
            "--distribute", "mirrored"]
    code, _, err = _run(args, timeout=300)
    assert code == 2 and "--distribute runs Keras's engines" in err, err[-3000:]


# --- a dead worker --------------------------------------------------------------------------------


def _workers_of(pid):
    """The launcher's worker processes, by their TF_CONFIG task index."""
    found = {}
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        config = next((e[len(b"TF_CONFIG="):] for e in environ if e.startswith(b"TF_CONFIG=")), None)
        if config:
            found[json.loads(config)["task"]["index"]] = int(child)
    return found


@pytest.mark.slow
def test_a_killed_worker_stops_the_job_and_resume_continues(tmp_path):
    run_dir, fault_timeout = tmp_path / "run", 20
    args = _train(run_dir, "--epochs", "3", "--distribute", "multi-worker", "--devices", "2",
                  "--fault-timeout", str(fault_timeout))
    launcher = subprocess.Popen(args, cwd=ROOT, env=subprocess_env(OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers = {}
    try:
        deadline = time.monotonic() + 900
        checkpoint = run_dir / runs.CHECKPOINTS["keras"]
        while not checkpoint.exists():  # epoch 1 is complete; epoch 2 is running
            assert launcher.poll() is None, launcher.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "no epoch finished in 900 s"
            workers = _workers_of(launcher.pid) or workers
            time.sleep(0.1)
        workers = _workers_of(launcher.pid) or workers
        assert sorted(workers) == [0, 1], workers
        os.kill(workers[1], signal.SIGKILL)
        killed = time.monotonic()
        _, err = launcher.communicate(timeout=fault_timeout + 120)
        took = time.monotonic() - killed
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
    print(f"the job stopped {took:.1f} s after worker 1 was killed (fault timeout {fault_timeout} s)")
    assert launcher.returncode == 2, err[-4000:]
    assert "worker 1 of 2 was killed by signal 9" in err and "--resume" in err, err[-4000:]
    assert not _alive(workers.values()), "a worker outlived the job"
    done = runs.read_metrics(run_dir)
    assert 1 <= len(done) < 3, done  # killed mid-run: epoch 3 never finished

    code, _, err = _run(args + ["--resume", "--json"], timeout=900)
    assert code == 0, err[-4000:]
    rows = runs.read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:len(done)] == done  # the finished epochs are the checkpoint's, not recomputed
    assert (run_dir / runs.FINAL_WEIGHTS).is_file()
