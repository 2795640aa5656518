"""Data-parallel PyTorch (torchrun, DDP, gloo on localhost): N replicas compute what one process
computes, the run folder is one process's, a dead replica ends the job, and --resume continues it
on another replica count. Every process started here has a time limit and is killed in a finally."""

import csv
import os
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

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
TRAIN = ["-m", "alexnet_cli.train", "--framework", "torch", "--variant", "cifar", "--data", "digits", "--no-progress"]


def start(args):
    """A process in its own session, so its whole group (torchrun and workers) can be killed."""
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(OMP_NUM_THREADS="1"), start_new_session=True)


def finish(proc, timeout):
    """(returncode, stdout, stderr, seconds); the group is killed if it runs past ``timeout``."""
    began = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail(f"{proc.args} ran past {timeout}s")
    finally:
        if proc.poll() is None:
            kill_group(proc)
    return proc.returncode, out, err, time.monotonic() - began


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def run(args, timeout=300):
    return finish(start(args), timeout)


def children(pid):
    """Live children of ``pid`` (from /proc: no third-party process library)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    except OSError:
        return {}


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- (d) the shard of the epoch order -------------------------------------------------------


@pytest.mark.parametrize("replicas", [2, 4])
def test_shards_put_together_are_one_process_epoch(replicas):
    from alexnet_torch.distributed import ShardSampler

    data = subset(load_digits()[0], 50)  # 50 = 6 batches of 8 and 2 left over: dropped, as in one process
    train = Pipeline(data, CIFAR.augment, train=True, seed=3, batch_size=8)
    for epoch in (0, 1):
        shards = []
        for rank in range(replicas):
            sampler = ShardSampler(train, rank, replicas)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        order = train.order(epoch).tolist()
        assert len(order) == 48 and all(len(s) == 48 // replicas for s in shards)
        assert sorted(sum(shards, [])) == sorted(order) and len(set(sum(shards, []))) == 48  # each sample once
        per = 8 // replicas
        for k in range(6):  # step k of all replicas, put together, is one process's batch k, in order
            assert sum((s[k * per:(k + 1) * per] for s in shards), []) == order[k * 8:(k + 1) * 8]
    assert train.order(0).tolist() != train.order(1).tolist()

    val = Pipeline(data, CIFAR.augment, train=False, batch_size=8)  # evaluation keeps every sample
    shards = [list(ShardSampler(val, rank, replicas)) for rank in range(replicas)]
    assert sorted(sum(shards, [])) == list(range(50))


def test_shard_refuses_a_batch_that_does_not_split():
    from alexnet_torch.distributed import Replicas, ShardSampler

    pipe = Pipeline(subset(load_digits()[0], 20), CIFAR.augment, train=True, batch_size=6)
    with pytest.raises(ValueError, match="split evenly over 4"):
        ShardSampler(pipe, 0, 4)
    with pytest.raises(ValueError, match="--batch-size is the global batch.*multiple of 4"):
        Replicas(0, 4, 0, "gloo", 300).per_replica(6)


def test_sync_batchnorm_on_one_process_is_the_network_it_replaced():
    """Same state_dict keys and, in float64, the same outputs, gradients and running statistics as
    the Keras-convention BatchNorm it replaces (distributed: tested by the replica check)."""
    import torch

    from alexnet_torch.distributed import SyncBatchNormKeras, convert_sync_batchnorm
    from parity.replicas_torch import build

    ref, sync = build("cifar", 0).double(), build("cifar", 0).double()
    assert convert_sync_batchnorm(sync) == 9
    assert sum(isinstance(m, SyncBatchNormKeras) for m in sync.modules()) == 9
    assert list(ref.state_dict()) == list(sync.state_dict())
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6) % 10
    for model in (ref, sync):
        model.train()
        torch.nn.functional.cross_entropy(model(x), y).backward()
    scale = max(p.grad.abs().max().item() for p in ref.parameters())
    for (name, a), b in zip(ref.named_parameters(), sync.parameters()):
        assert (a.grad - b.grad).abs().max().item() <= 1e-12 * scale, name
    for (name, a), b in zip(ref.named_buffers(), sync.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    ref.eval(), sync.eval()
    torch.testing.assert_close(ref(x), sync(x), rtol=1e-12, atol=1e-12)


# --- (a) the equivalence proof ---------------------------------------------------------------


@pytest.mark.parametrize("variant", [pytest.param("paper", marks=pytest.mark.slow), "cifar"])  # cifar: make test's
def test_two_replicas_reach_one_process_weights(variant):
    from parity.replicas import FLOOR_MULTIPLE, check_replicas

    report = check_replicas("torchrun/gloo", variant, replicas=2, steps=2, seed=0)
    print(report)
    assert report.ok, str(report)
    assert list(report.references) == ["torch"]
    floors = report.references["torch"].floors
    judged = [r for r in report.rows.values() if r.judged]
    assert [r.engine for r in judged] == ["torchrun/gloo"]
    assert judged[0].batchnorm == (None if variant == "paper" else "synchronized")
    if variant == "cifar":  # per-replica BatchNorm is another network: the check tells it apart
        plain = report.rows["torchrun/gloo, no SyncBN"]
        assert not report.judge(plain) and plain.batchnorm == "per replica"
        assert plain.weights[0] > 100 * FLOOR_MULTIPLE * floors.weights[0], str(report)
        assert plain.statistics[0] > 100 * FLOOR_MULTIPLE * floors.statistics[0], str(report)


# --- (b) training under torchrun: the run folder of one process ----------------------------


@pytest.mark.slow
def test_torchrun_training_writes_one_process_run_folder(tmp_path):
    small = ["--limit", "48", "--batch-size", "16", "--epochs", "1"]
    one = run([sys.executable, *TRAIN, *small, "--out", str(tmp_path / "one")])
    assert one[0] == 0, one[2]
    two = run([*TORCHRUN, "--nproc_per_node", "2", *TRAIN, *small, "--sync-bn", "--out", str(tmp_path / "two")])
    assert two[0] == 0, two[2]
    assert [line for line in two[1].splitlines() if line.strip()] == \
        [line for line in two[1].splitlines() if line.startswith("torch cifar on digits: 1 epoch,")]  # rank 0 only
    assert len(two[1].strip().splitlines()) == 1
    headers = [open(tmp_path / name / "metrics.csv").readline() for name in ("one", "two")]
    assert headers[0] == headers[1] and tuple(headers[1].strip().split(",")) == runs.METRICS
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert runs.read_config(tmp_path / "two").batch_size == 16  # the global batch is the run's batch
    rows = runs.read_metrics(tmp_path / "two")
    assert len(rows) == 1 and 0 <= rows[0]["val_top1"] <= 1 and np.isfinite(rows[0]["train_loss"])


@pytest.mark.slow
def test_torchrun_refuses_a_global_batch_that_does_not_split(tmp_path):
    code, out, err, _ = run([*TORCHRUN, "--nproc_per_node", "2", *TRAIN, "--limit", "48", "--batch-size", "15",
                             "--epochs", "1", "--out", str(tmp_path / "run")], timeout=180)
    assert code != 0
    assert "alexnet-train: error: --batch-size is the global batch" in err
    assert not (tmp_path / "run").exists()


# --- (c) a replica killed mid-epoch ----------------------------------------------------------


def _signal_rank1_after_epoch1(proc, out, sig, *, timeout):
    """Wait for the job's first checkpointed epoch, send ``sig`` to replica 1 and wait for the job
    to end; the group is killed if it outlives ``timeout``. Returns (exit code, stderr, seconds from
    the signal to the end, the replicas' pids)."""
    workers = []
    try:
        deadline = time.monotonic() + 300
        while not (out / "metrics.csv").is_file():  # epoch 1 is checkpointed; the replicas are in epoch 2
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no epoch within 300 s"
            time.sleep(0.1)
        workers = children(proc.pid)
        rank1 = [pid for pid in workers if environ(pid).get(b"RANK") == b"1"]
        assert len(workers) == 2 and len(rank1) == 1, workers
        sent_at = time.monotonic()
        os.kill(rank1[0], sig)
        code, _, err, _ = finish(proc, timeout=timeout)
        return code, err, time.monotonic() - sent_at, workers
    finally:
        if proc.poll() is None:
            kill_group(proc)


@pytest.mark.slow
def test_killed_replica_ends_the_job_and_resume_continues_on_one_process(tmp_path):
    out = tmp_path / "run"
    args = ["--limit", "96", "--batch-size", "16", "--epochs", "3", "--out", str(out)]
    proc = start([*TORCHRUN, "--nproc_per_node", "2", *TRAIN, "--sync-bn", *args])
    code, err, ended_in, workers = _signal_rank1_after_epoch1(proc, out, signal.SIGKILL, timeout=120)
    assert code != 0, err
    assert ended_in < 90, f"the job took {ended_in:.0f} s to end after a replica died"
    time.sleep(1)
    assert not [pid for pid in workers if alive(pid)], "a replica outlived the job"
    assert not (out / "model.safetensors").exists()  # it died mid-run
    done = len(runs.read_metrics(out))
    assert 1 <= done < 3
    before = runs.read_metrics(out)

    resumed = run([sys.executable, *TRAIN, *args, "--resume"])  # 2 replicas' checkpoint, 1 process
    assert resumed[0] == 0, resumed[2]
    rows = runs.read_metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:done] == before  # the finished epochs are kept, not rerun
    assert (out / "model.safetensors").is_file()


def test_replica_check_refuses_bad_arguments_before_starting_anything():
    for extra, expected in ((["--batch", "7"], "must split evenly over 2 replicas"),
                            (["--engine", "mpi"], "unknown engine 'mpi'"),
                            (["--train-step"], "--replicas checks freshly initialized networks")):
        code, out, err, _ = run([sys.executable, "-m", "parity", "check", "--replicas", "2", "--variant", "cifar",
                                 *extra], timeout=180)
        lines = err.strip().splitlines()
        assert code == 2 and lines[-1].startswith("alexnet-parity: error: ") and expected in lines[-1], err


@pytest.mark.slow
def test_hung_replica_ends_the_job_after_the_timeout(tmp_path):
    """A replica that stops answering without dying (SIGSTOP): the others' next collective fails
    after --dist-timeout, and torchrun then stops the whole job."""
    out = tmp_path / "run"
    proc = start([*TORCHRUN, "--nproc_per_node", "2", *TRAIN, "--limit", "96", "--batch-size", "16", "--epochs", "2",
                  "--dist-timeout", "10", "--out", str(out)])
    code, err, ended_in, workers = _signal_rank1_after_epoch1(proc, out, signal.SIGSTOP, timeout=180)
    assert code != 0, err
    # 10 s timeout, then torchrun's own grace period (30 s) before it kills the stopped replica
    assert ended_in < 120, f"the job took {ended_in:.0f} s to end after a replica hung"
    time.sleep(1)
    assert not [pid for pid in workers if alive(pid)], "a replica outlived the job"
    assert not (out / "model.safetensors").exists()
