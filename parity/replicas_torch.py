"""torchrun/gloo, one engine of ``parity.replicas``: how PyTorch's one process and its replicas
produce the states that check judges.

One process trains a freshly initialized network (dropout off) for ``steps`` SGD steps on global
batches of ``batch`` augmented digits, in fp32, in float64, and in fp32 fed each batch's samples in
reverse order (the floor's three runs); ``torchrun --standalone --nproc_per_node N`` then trains the
same network from the same weights on the same batches under DistributedDataParallel, every
replica on its ``batch / replicas`` share, with or without SyncBatchNorm. Each returns its states
after step 1 and after the last step (``state_dict`` as float64 numpy) and the loss of every step;
``parity.replicas.check_replicas`` measures and judges them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER_TIMEOUT_S = 300  # a torchrun job of the check; killed with its process group beyond this
# the training-step check's SGD: one set of numbers for every proof
from parity.steps import DEFAULT_LEARNING_RATE as LEARNING_RATE  # noqa: E402
from parity.steps import DEFAULT_MOMENTUM as MOMENTUM  # noqa: E402
from parity.steps import DEFAULT_WEIGHT_DECAY as WEIGHT_DECAY  # noqa: E402


# --- the one-process reference and the shared pieces ------------------------------------------


def pipeline(variant: str, batch: int, seed: int):
    """The digits seen through the variant's recipe: what one process and every replica read."""
    from alexnet_training.augment import Pipeline
    from alexnet_training.data import load_digits
    from alexnet_training.recipes import RECIPES

    recipe = RECIPES[variant if variant in RECIPES else "cifar"]
    return Pipeline(load_digits()[0], recipe.augment, train=True, seed=seed, batch_size=batch)


def build(variant: str, seed: int):
    """The network every run starts from: PyTorch's initialization seeded, dropout off, logits."""
    import torch

    import alexnet_torch

    torch.manual_seed(seed)
    options = {"logits": True} if variant == "cifar" else {}
    return alexnet_torch.build(variant, dropout=0.0, **options)


def one_process(variant: str, steps: int, batch: int, seed: int) -> tuple[dict, dict, list[float]]:
    """One process's states (float64 numpy): the start, and after step 1 and the last step of fp32,
    float64, and fp32 fed each batch's samples in reverse order (the same sums in another order);
    and the fp32 losses."""
    import copy

    import torch

    from alexnet_torch.training import sgd, train_step
    from parity.steps import _torch_state

    pipe = pipeline(variant, batch, seed)
    models = {"fp32": build(variant, seed)}
    models["float64"], models["reordered"] = copy.deepcopy(models["fp32"]).double(), copy.deepcopy(models["fp32"])
    start = _torch_state(models["fp32"])
    optimizers = {name: sgd(m, lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
                  for name, m in models.items()}

    def train(name, x, y) -> float:  # the step alexnet-train takes, with its optimizer
        images = torch.from_numpy(np.ascontiguousarray(x)).to(next(models[name].parameters()).dtype)
        loss, _ = train_step(models[name], optimizers[name], images, torch.from_numpy(np.ascontiguousarray(y)).long())
        return loss.item()

    losses, states = [], {name: [] for name in models}
    for step in range(steps):
        x, y = pipe.batch(step % pipe.num_batches, step // pipe.num_batches)
        x = x.transpose(0, 3, 1, 2)
        losses.append(train("fp32", x, y))
        train("float64", x, y)
        train("reordered", x[::-1], y[::-1])
        if step in (0, steps - 1):
            for name, m in models.items():
                states[name].append(_torch_state(m))
    return start, {name: [s[0], s[-1]] for name, s in states.items()}, losses


# --- engines -----------------------------------------------------------------------------------


def torchrun_gloo(variant: str, replicas: int, steps: int, batch: int, seed: int, sync_bn: bool):
    """``torchrun --standalone --nproc_per_node N`` on this machine, gloo over localhost."""
    import alexnet_torch  # noqa: F401  (torch first: parity._triton)
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory(prefix="alexnet-replicas-") as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
               "--nproc_per_node", str(replicas), "-m", "parity.replicas_torch", "--variant", variant, "--steps", str(steps),
               "--batch", str(batch), "--seed", str(seed), "--out", tmp] + (["--sync-bn"] if sync_bn else [])
        run_bounded(cmd, timeout=WORKER_TIMEOUT_S, what=f"torchrun with {replicas} replicas")
        states = [{k: v.astype(np.float64) for k, v in load_file(Path(tmp) / f"state-{i}.safetensors").items()}
                  for i in (1, steps)]
        losses = json.loads((Path(tmp) / "losses.json").read_text())
    return states, losses


def reference(framework: str, variant: str, steps: int, batch: int, seed: int) -> tuple[dict, dict, list[float]]:
    """``parity.replicas``'s entry: :func:`one_process`."""
    assert framework == "torch", framework
    return one_process(variant, steps, batch, seed)


def run_engine(name: str, variant: str, replicas: int, steps: int, batch: int, seed: int, *, start: dict,
               syncs=(True,)) -> dict:
    """``parity.replicas``'s entry: ``{sync_bn: (states, losses)}``; the replicas build ``start``
    themselves (the same seeded network as :func:`one_process`)."""
    assert name == "torchrun/gloo", name
    return {sync: torchrun_gloo(variant, replicas, steps, batch, seed, sync) for sync in syncs}


def run_bounded(cmd: list[str], *, timeout: float, what: str) -> str:
    """Run ``cmd`` in its own session; past ``timeout`` kill the whole process group (torchrun and
    its workers) so nothing is left behind. Returns stdout; a failure is one clear error."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"{what} did not finish within {timeout:g} s and was stopped") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out


# --- the torchrun worker -----------------------------------------------------------------------


def _worker(argv: list[str] | None = None) -> int:
    """One replica: the one-process run's network, its share of each batch, DDP, k steps."""
    import argparse

    from safetensors.torch import save_file

    from alexnet_spec.files import atomic_write
    from alexnet_torch import distributed
    from alexnet_torch.training import sgd, train_step

    p = argparse.ArgumentParser(prog="python -m parity.replicas_torch", description="a replica of check_replicas")
    p.add_argument("--variant", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    replicas = distributed.setup()
    if replicas is None:
        raise SystemExit("python -m parity.replicas_torch is a torchrun worker: launch it with torchrun --nproc_per_node N")
    try:
        model = build(args.variant, args.seed)
        if args.sync_bn:
            distributed.convert_sync_batchnorm(model)
        net = replicas.wrap(model)
        optimizer = sgd(net, lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        pipe = pipeline(args.variant, args.batch, args.seed)
        loader = replicas.loader(pipe)
        losses, epoch = [], 0
        while len(losses) < args.steps:
            loader.sampler.set_epoch(epoch)
            loader.dataset.set_epoch(epoch)
            for x, y in loader:
                local, _ = train_step(net, optimizer, x, y.long())  # the step alexnet-train takes
                losses.append(replicas.sum(local.item())[0] / replicas.world_size)
                if replicas.main and len(losses) in (1, args.steps):
                    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    atomic_write(Path(args.out) / f"state-{len(losses)}.safetensors",
                                 lambda tmp, state=state: save_file(state, tmp), overwrite=True)
                if len(losses) == args.steps:
                    break
            epoch += 1
        if replicas.main:
            atomic_write(Path(args.out) / "losses.json", lambda tmp: Path(tmp).write_text(json.dumps(losses)))
        replicas.barrier()
    finally:
        distributed.shutdown()
    return 0


__all__ = ["one_process", "reference", "run_bounded", "run_engine", "torchrun_gloo"]

if __name__ == "__main__":
    sys.exit(_worker())
