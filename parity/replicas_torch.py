"""N data-parallel replicas compute what one process computes: the proof, as a library function.

One process trains a freshly initialized network (dropout off) for ``steps`` SGD steps on global
batches of ``batch`` augmented digits; each distributed engine then trains the same network from
the same weights on the same batches, every replica on its ``batch / replicas`` share, and the
final weights are compared with the one-process run's.

A difference means nothing without a yardstick: sums in another order round differently in fp32,
and from the second step on the network amplifies that (a ReLU that flips, batch statistics that
couple the samples). The yardstick is the **fp32 floor**, the larger of two distances of one
process's fp32 run: from the same run in float64, and from the same run fed each batch's samples in
reverse order (the same sums in another order, which is all the replicas change). Differences are
relative, as in ``parity.steps``: the max over layers of the largest difference divided by the
layer's largest float64 change over the run. ``weights`` are the parameters, ``statistics`` the
BatchNorm running means and variances (``cifar`` only).

``cifar`` normalizes by batch statistics, so its replicas match one process only with synchronized
BatchNorm; the report also runs them without it (a row that is shown, not judged) to show how far
apart per-replica statistics put the network.

Judged: the weights after step 1 (same start, same batch: nothing compounds yet) within
``FLOOR_MULTIPLE`` floors, and every step's loss within ``DRIFT_RTOL`` of one process's. The weights
after the last step are shown against their own floor.

Engines are rows of one table keyed by name (``ENGINES``); each takes
``(variant, replicas, steps, batch, seed, sync_bn)`` and returns rank 0's states after step 1 and
after the last step (``state_dict`` as float64 numpy) and the replicas' mean loss of every step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Replicas against one process after step 1, as a multiple of the fp32 floor: two fp32 runs each
# sit about one floor from float64, in different directions, so up to 2 floors apart. Measured
# (docs/scaling.md): 0.2-1.8 floors. A wrong shard, a missing gradient average or per-replica
# BatchNorm is thousands of floors away.
FLOOR_MULTIPLE = 4.0
# From step 2 on, rounding is amplified by the network (a ReLU that flips in one run and not the
# other moves every layer below it: parity.steps, "Limit"), so later weights are shown against their
# floor, not judged; the losses of every step are judged, as parity.steps judges runs.
from parity.steps import DRIFT_RTOL  # noqa: E402

WORKER_TIMEOUT_S = 300  # a torchrun job of the check; killed with its process group beyond this
DEFAULT_BATCH = {"paper": 4, "cifar": 8, "torchvision": 4}
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4  # parity.steps's defaults


@dataclass
class Floors:
    """One process's fp32 rounding, after step 1 and after the last step: fp32 against float64 and
    against fp32 fed each batch reversed (the larger is the floor); weights and statistics."""

    float64: list[float]  # weights, [step 1, last step]
    reordered: list[float]
    weights: list[float]  # the floor: the larger of the two
    statistics: list[float] | None


@dataclass
class EngineRow:
    engine: str
    replicas: int
    batch_per_replica: int
    sync_bn: bool
    weights: list[float]  # replicas vs one process (fp32), [step 1, last step]
    statistics: list[float] | None  # BatchNorm running statistics; None: the network has none
    weights_vs_float64: float  # last step
    loss_drift: float  # max over steps of |replicas' loss - one process's| / |one process's|
    losses: list[float]  # per step, the replicas' mean loss (all-reduced)
    seconds: float
    judged: bool = True  # False: shown to explain, expected to differ (per-replica BatchNorm)
    ok: bool = True


@dataclass
class ReplicasReport:
    variant: str
    steps: int
    batch: int
    seed: int
    floors: Floors
    losses: list[float]  # one process fp32, per step
    rows: dict[str, EngineRow] = field(default_factory=dict)  # keyed by engine name

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows.values() if r.judged)

    def judge(self, row: EngineRow) -> bool:
        f = self.floors
        return (row.weights[0] <= FLOOR_MULTIPLE * f.weights[0] and row.loss_drift <= DRIFT_RTOL
                and (row.statistics is None or row.statistics[0] <= FLOOR_MULTIPLE * f.statistics[0]))

    def verdict(self) -> str:
        judged = [r for r in self.rows.values() if r.judged]
        if self.ok:
            worst = max(judged, key=lambda r: r.weights[0])
            return (f"PASS: {self.variant}, global batch {self.batch}: after step 1 every engine's replicas hold one "
                    f"process's weights within {FLOOR_MULTIPLE:g}x the fp32 floor (worst: {worst.engine}, "
                    f"{_ratio(worst.weights[0], self.floors.weights[0])} floors), and their losses stay within "
                    f"{DRIFT_RTOL:.0e} of one process's for all {self.steps} steps")
        bad = next(r for r in judged if not r.ok)
        return (f"FAIL: {self.variant}: {bad.engine} with {bad.replicas} replicas is {bad.weights[0]:.2e} from one "
                f"process after step 1 (floor {self.floors.weights[0]:.2e}, limit {FLOOR_MULTIPLE:g}x; statistics "
                f"{_fmt(bad.statistics and bad.statistics[0])}), losses up to {bad.loss_drift:.1e} apart (limit "
                f"{DRIFT_RTOL:.0e}): the replicas do not compute what one process does")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "ok": self.ok, "verdict": self.verdict(), "steps": self.steps,
                "batch": self.batch, "seed": self.seed, "floors": asdict(self.floors),
                "floor_multiple": FLOOR_MULTIPLE, "drift_rtol": DRIFT_RTOL, "losses": self.losses,
                "rows": {name: asdict(row) for name, row in self.rows.items()}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        f, k = self.floors, self.steps
        head = ["engine", "replicas x batch", "step 1 weights", "floors", "statistics", f"step {k} weights", "floors",
                "statistics", "loss drift", "seconds", ""]
        body = [[name, f"{r.replicas} x {r.batch_per_replica}", f"{r.weights[0]:.2e}", _ratio(r.weights[0], f.weights[0]),
                 _fmt(r.statistics and r.statistics[0]), f"{r.weights[1]:.2e}", _ratio(r.weights[1], f.weights[1]),
                 _fmt(r.statistics and r.statistics[1]), f"{r.loss_drift:.1e}", f"{r.seconds:.1f}",
                 ("ok" if r.ok else "FAIL") if r.judged else "shown, not judged"]
                for name, r in self.rows.items()]
        widths = [max(len(c) for c in col) for col in zip(head, *body)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        steps = ("step 1", f"step {k}")
        lines = [f"{self.variant}: replicas vs one process, {k} SGD steps at global batch {self.batch} (seed {self.seed}, "
                 "dropout off); differences relative to each layer's float64 change",
                 "fp32 floor (one process, weights): " + "; ".join(
                     f"{s}: vs float64 {a:.2e}, vs batches reversed {b:.2e}"
                     for s, a, b in zip(steps, f.float64, f.reordered))
                 + (f"; statistics {_fmt(f.statistics[0])}, {_fmt(f.statistics[1])}" if f.statistics else ""),
                 fmt(head), fmt(["-" * w for w in widths])]
        lines += [fmt(c) for c in body]
        return "\n".join(lines + [self.verdict()])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}" if floor > 0 else ("0" if value == 0 else "inf")


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

    from parity.steps import _torch_state, _torch_trainer

    pipe = pipeline(variant, batch, seed)
    models = {"fp32": build(variant, seed)}
    models["float64"], models["reordered"] = copy.deepcopy(models["fp32"]).double(), copy.deepcopy(models["fp32"])
    start = _torch_state(models["fp32"])
    trainers = {name: _torch_trainer(m, False, LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, "decoupled")
                for name, m in models.items()}
    losses, states = [], {name: [] for name in models}
    for step in range(steps):
        x, y = pipe.batch(step % pipe.num_batches, step // pipe.num_batches)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        losses.append(trainers["fp32"](x, y))
        trainers["float64"](x, y)
        trainers["reordered"](np.ascontiguousarray(x[::-1]), np.ascontiguousarray(y[::-1]))
        if step in (0, steps - 1):
            for name, m in models.items():
                states[name].append(_torch_state(m))
    return start, {name: [s[0], s[-1]] for name, s in states.items()}, losses


def difference(a: dict, b: dict, start: dict, reference: dict, keys) -> float:
    """Max over layers of max |a - b| over the layer's ``keys``, relative to the largest float64
    change of those tensors over the run (per layer, as ``parity.steps``: a bias ahead of a
    BatchNorm gets no gradient, so its own change is weight decay near fp32's grain)."""
    layers: dict[str, list[str]] = {}
    for key in keys:
        layers.setdefault(key.rsplit(".", 1)[0], []).append(key)
    worst = 0.0
    for group in layers.values():
        scale = max(float(np.max(np.abs(reference[k] - start[k]))) for k in group)
        if scale > 0:
            worst = max(worst, max(float(np.max(np.abs(a[k] - b[k]))) for k in group) / scale)
    return worst


def _split(start: dict) -> tuple[list[str], list[str]]:
    statistics = [k for k in start if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in start if k not in statistics and not k.endswith("num_batches_tracked")]
    return weights, statistics


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


ENGINES = {"torchrun/gloo": torchrun_gloo}


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


def check_replicas(engine: str, variant: str = "cifar", replicas: int = 2, steps: int = 2, batch: int | None = None,
                   seed: int = 0) -> ReplicasReport:
    """``replicas`` replicas of ``engine`` (a name in ``ENGINES``, or "all") against one process:
    the report's table has a row per engine; ``cifar`` adds a row without synchronized BatchNorm."""
    names = list(ENGINES) if engine == "all" else [engine]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine {unknown[0]!r}; expected one of {', '.join(ENGINES)} or 'all'")
    batch = batch or DEFAULT_BATCH.get(variant, 4) * replicas // 2
    if replicas < 2:
        raise ValueError(f"replicas must be at least 2 to compare with one process; found {replicas}")
    if batch % replicas:
        raise ValueError(f"the global batch {batch} must split evenly over {replicas} replicas; use a multiple of "
                         f"{replicas}")
    if variant == "cifar" and batch // replicas < 2:
        raise ValueError(f"cifar's BatchNorm needs at least 2 samples per replica; found {batch // replicas}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; found {steps}")
    start, states, losses = one_process(variant, steps, batch, seed)
    weights, statistics = _split(start)
    s32, s64, rev = states["fp32"], states["float64"], states["reordered"]

    def measure(a, b, keys, i):
        return difference(a[i], b[i], start, s64[i], keys)

    f64 = [measure(s32, s64, weights, i) for i in (0, 1)]
    reordered = [measure(s32, rev, weights, i) for i in (0, 1)]
    stats = [max(measure(s32, s64, statistics, i), measure(s32, rev, statistics, i)) for i in (0, 1)] \
        if statistics else None
    report = ReplicasReport(variant, steps, batch, seed, Floors(f64, reordered, [max(a, b) for a, b in zip(f64, reordered)],
                                                                stats), losses)
    runs = [(name, True) for name in names] + ([(f"{names[0]}, no SyncBN", False)] if statistics else [])
    for name, sync_bn in runs:
        began = time.perf_counter()
        got, rep_losses = ENGINES[name.split(",")[0]](variant, replicas, steps, batch, seed, sync_bn)
        drift = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(rep_losses, losses))
        row = EngineRow(name + (" + SyncBN" if statistics and sync_bn else ""), replicas, batch // replicas,
                        sync_bn and bool(statistics), [measure(got, s32, weights, i) for i in (0, 1)],
                        [measure(got, s32, statistics, i) for i in (0, 1)] if statistics else None,
                        measure(got, s64, weights, 1), drift, rep_losses, time.perf_counter() - began, judged=sync_bn)
        row.ok = report.judge(row)
        report.rows[row.engine] = row
    return report


# --- the torchrun worker -----------------------------------------------------------------------


def _worker(argv: list[str] | None = None) -> int:
    """One replica: the one-process run's network, its share of each batch, DDP, k steps."""
    import argparse

    import torch

    from safetensors.torch import save_file

    from alexnet_spec.files import atomic_write
    from alexnet_torch import distributed
    from parity.steps import _torch_trainer

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
        step = _torch_trainer(net, False, LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, "decoupled")
        pipe = pipeline(args.variant, args.batch, args.seed)
        loader = replicas.loader(pipe)
        losses, epoch = [], 0
        while len(losses) < args.steps:
            loader.sampler.set_epoch(epoch)
            loader.dataset.set_epoch(epoch)
            for x, y in loader:
                local = step(x.numpy(), y.numpy())
                losses.append(replicas.sum(local)[0] / replicas.world_size)
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


__all__ = ["ENGINES", "FLOOR_MULTIPLE", "EngineRow", "Floors", "ReplicasReport", "check_replicas", "run_bounded",
           "torchrun_gloo"]

if __name__ == "__main__":
    sys.exit(_worker())
