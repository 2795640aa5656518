"""N data-parallel replicas compute what one process computes: one criterion and one report for
every engine.

For each framework one process trains a network (dropout off) for ``steps`` SGD steps (lr 0.01,
momentum 0.9, decoupled weight decay 5e-4) on global batches of ``batch`` augmented digits
(``paper`` on PyTorch's side; seeded images for Keras's ``paper``); each distributed engine then
trains the same network from the same weights on the same batches, every replica on its
``batch / replicas`` share, and its rank 0's states after step 1 and after the last step, and the
replicas' loss of every step, are compared with that one process's. The engines
(``ENGINES``) and how each produces its states live in ``parity.replicas_torch`` (torchrun/gloo)
and ``parity.replicas_keras`` (tf MirroredStrategy, tf MultiWorkerMirroredStrategy, jax
DataParallel); the criterion is here, the same for all.

A difference means nothing without a yardstick: sums in another order round differently in fp32,
and from the second step on the network amplifies that (a ReLU that flips, batch statistics that
couple the samples). The yardstick is the **fp32 floor** of the engine's own framework, the larger
of two distances of one process's fp32 run: from the same run in float64, and from the same run fed
each batch's samples in reverse order (the same sums in another order, which is all the replicas
change). Differences are relative, as in ``parity.steps``: the max over layers of the largest
difference divided by the layer's largest float64 change up to that step. ``weights`` are the
parameters, ``statistics`` the BatchNorm running (moving) means and variances (``cifar`` only), each
measured on its own.

Judged, for every engine: the weights (and statistics) after step 1 (same start, same batch:
nothing compounds yet) within ``FLOOR_MULTIPLE`` floors, and every step's loss within
``DRIFT_RTOL`` of one process's. The states after the last step are shown against their own floor,
not judged. ``cifar`` normalizes by batch statistics, so its replicas match one process only when
BatchNorm sees the global batch; engines that can switch that off (torchrun without SyncBN,
MirroredStrategy without ``synchronized=True``) also run without it, a row that is shown, not
judged, to show how far apart per-replica statistics put the network.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from alexnet_spec.text import format_table
from parity.steps import DRIFT_RTOL

# Replicas against one process after step 1, as a multiple of their framework's fp32 floor: two
# fp32 runs each sit about one floor from float64, in different directions, so up to 2 floors
# apart. Measured (docs/scaling.md; seed 0, 2 replicas, 2 steps, this 2-core CPU): paper 1.00
# floors on every engine (torchrun/gloo, tf MirroredStrategy, tf MultiWorkerMirroredStrategy, jax
# DataParallel); cifar 1.05 (torchrun + SyncBN), 0.002 (both tf engines: their floor, 0.2, is
# float64's, one fc1 ReLU flipped; 1.00 of the reordered run's), 1.00 (jax). Per-replica BatchNorm
# is 21,385 (torchrun) and 19.5 (tf MirroredStrategy) floors away; an unaveraged gradient shows in
# the second step's loss (DRIFT_RTOL), however large the floor.
FLOOR_MULTIPLE = 4.0

DEFAULT_BATCH = {"paper": 4, "cifar": 8, "torchvision": 4}  # at 2 replicas; scaled with the replica count


@dataclass(frozen=True)
class Engine:
    """A distributed engine: its name, the framework whose one process it is judged against, and
    whether ``cifar`` also runs it without BatchNorm over the global batch (a row shown, not judged)."""

    name: str
    framework: str  # "torch", "tensorflow" or "jax"
    unsynchronized: bool


ENGINES = {e.name: e for e in (Engine("torchrun/gloo", "torch", True),
                               Engine("tf MirroredStrategy", "tensorflow", True),
                               Engine("tf MultiWorkerMirroredStrategy", "tensorflow", False),
                               Engine("jax DataParallel", "jax", False))}


@dataclass
class Floors:
    """One process's fp32 rounding in one framework, after step 1 and after the last step: fp32
    against float64 and against fp32 fed each batch reversed (the larger is the floor)."""

    float64: list[float]  # weights, [step 1, last step]
    reordered: list[float]
    weights: list[float]  # the floor: the larger of the two
    statistics: list[float] | None  # the same for BatchNorm's running statistics; None: the network has none


@dataclass
class Reference:
    """One framework's one-process runs: its floors and its fp32 losses."""

    framework: str
    floors: Floors
    losses: list[float]  # one process fp32, per step
    seconds: float


@dataclass
class EngineRow:
    engine: str
    framework: str  # the reference it is judged against: ReplicasReport.references[framework]
    replicas: int
    batch_per_replica: int
    batchnorm: str | None  # how BatchNorm normalizes: "synchronized", "global batch", "per replica"; None: no BatchNorm
    weights: list[float]  # replicas vs one process (fp32), [step 1, last step]
    statistics: list[float] | None  # BatchNorm running statistics; None: the network has none
    weights_vs_float64: float  # last step
    loss_drift: float  # max over steps of |replicas' loss - one process's| / |one process's|
    losses: list[float]  # per step, the replicas' mean loss over the global batch
    seconds: float
    judged: bool = True  # False: shown to explain, expected to differ (per-replica BatchNorm)
    ok: bool = True


@dataclass
class ReplicasReport:
    variant: str
    steps: int
    batch: int
    seed: int
    references: dict[str, Reference] = field(default_factory=dict)  # keyed by framework
    rows: dict[str, EngineRow] = field(default_factory=dict)  # keyed by row name

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows.values() if r.judged)

    def floors(self, row: EngineRow) -> Floors:
        return self.references[row.framework].floors

    def judge(self, row: EngineRow) -> bool:
        f = self.floors(row)
        return (row.weights[0] <= FLOOR_MULTIPLE * f.weights[0] and row.loss_drift <= DRIFT_RTOL
                and (row.statistics is None or row.statistics[0] <= FLOOR_MULTIPLE * f.statistics[0]))

    def ratio(self, row: EngineRow, step: int = 0) -> float:
        """The row's weights after step 1 (``step`` 0) or the last step, in floors."""
        floor = self.floors(row).weights[step]
        return row.weights[step] / floor if floor > 0 else (0.0 if row.weights[step] == 0 else float("inf"))

    def verdict(self) -> str:
        judged = [r for r in self.rows.values() if r.judged]
        if self.ok:
            worst = max(judged, key=self.ratio)
            return (f"PASS: {self.variant}, global batch {self.batch}: after step 1 every engine's replicas hold one "
                    f"process's weights within {FLOOR_MULTIPLE:g}x their framework's fp32 floor (worst: "
                    f"{worst.engine}, {_ratio(worst.weights[0], self.floors(worst).weights[0])} floors), and their "
                    f"losses stay within {DRIFT_RTOL:.0e} of one process's for all {self.steps} steps")
        bad = next(r for r in judged if not r.ok)
        f = self.floors(bad)
        return (f"FAIL: {self.variant}: {bad.engine} with {bad.replicas} replicas is {bad.weights[0]:.2e} from one "
                f"process after step 1 (floor {f.weights[0]:.2e}, limit {FLOOR_MULTIPLE:g}x; statistics "
                f"{_fmt(bad.statistics and bad.statistics[0])}, floor {_fmt(f.statistics and f.statistics[0])}), "
                f"losses up to {bad.loss_drift:.1e} apart (limit {DRIFT_RTOL:.0e}): the replicas do not compute what "
                "one process does")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "ok": self.ok, "verdict": self.verdict(), "steps": self.steps,
                "batch": self.batch, "seed": self.seed, "floor_multiple": FLOOR_MULTIPLE, "drift_rtol": DRIFT_RTOL,
                "references": {name: asdict(ref) for name, ref in self.references.items()},
                "rows": {name: asdict(row) for name, row in self.rows.items()}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        k = self.steps
        head = ["engine", "replicas x batch", "BatchNorm", "step 1 weights", "floor", "floors", "statistics", "floor",
                f"step {k} weights", "floor", "floors", "loss drift", "seconds", ""]
        body = []
        for name, r in self.rows.items():
            f = self.floors(r)
            body.append([name, f"{r.replicas} x {r.batch_per_replica}", r.batchnorm or "-",
                         f"{r.weights[0]:.2e}", f"{f.weights[0]:.2e}", _ratio(r.weights[0], f.weights[0]),
                         _fmt(r.statistics and r.statistics[0]), _fmt(f.statistics and f.statistics[0]),
                         f"{r.weights[1]:.2e}", f"{f.weights[1]:.2e}", _ratio(r.weights[1], f.weights[1]),
                         f"{r.loss_drift:.1e}", f"{r.seconds:.1f}",
                         ("ok" if r.ok else "FAIL") if r.judged else "shown, not judged"])
        steps = ("step 1", f"step {k}")
        lines = [f"{self.variant}: replicas vs one process of their framework, {k} SGD steps at global batch "
                 f"{self.batch} (seed {self.seed}, dropout off); differences relative to each layer's float64 change; "
                 f"judged: step 1 within {FLOOR_MULTIPLE:g} floors and every step's loss within {DRIFT_RTOL:.0e}"]
        for name, ref in self.references.items():
            f = ref.floors
            lines.append(f"fp32 floor, {name} one process: " + "; ".join(
                f"{s}: vs float64 {a:.2e}, vs batches reversed {b:.2e}" for s, a, b in zip(steps, f.float64, f.reordered))
                + (f"; statistics {_fmt(f.statistics[0])}, {_fmt(f.statistics[1])}" if f.statistics else ""))
        lines += format_table(head, body)
        return "\n".join(lines + [self.verdict()])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}" if floor > 0 else ("0" if value == 0 else "inf")


# --- the measure -------------------------------------------------------------------------------


def _layer(key: str) -> str:
    """A state key's layer: "features.0.weight" -> "features.0", "conv1/kernel" -> "conv1"."""
    cut = max(key.rfind("."), key.rfind("/"))
    return key[:cut] if cut > 0 else key


def difference(a: dict, b: dict, start: dict, reference: dict, keys) -> float:
    """Max over layers of max |a - b| over the layer's ``keys``, relative to the largest float64
    change of those tensors from ``start`` to ``reference`` (per layer, as ``parity.steps``: a bias
    ahead of a BatchNorm gets no gradient, so its own change is weight decay near fp32's grain)."""
    layers: dict[str, list[str]] = {}
    for key in keys:
        layers.setdefault(_layer(key), []).append(key)
    worst = 0.0
    for group in layers.values():
        scale = max(float(np.max(np.abs(reference[k] - start[k]))) for k in group)
        if scale > 0:
            worst = max(worst, max(float(np.max(np.abs(a[k] - b[k]))) for k in group) / scale)
    return worst


STATISTICS = ("running_mean", "running_var", "moving_mean", "moving_variance")


def split(start: dict) -> tuple[list[str], list[str]]:
    """The state's keys: (weights, BatchNorm running statistics); step counters are neither."""
    statistics = [k for k in start if k.rsplit("/", 1)[-1].rsplit(".", 1)[-1] in STATISTICS]
    weights = [k for k in start if k not in statistics and not k.endswith("num_batches_tracked")]
    return weights, statistics


# --- the check ---------------------------------------------------------------------------------


def default_batch(variant: str, replicas: int) -> int:
    return DEFAULT_BATCH.get(variant, 4) * replicas // 2


def engine_names(engine) -> list[str]:
    """``engine``: a name in ``ENGINES``, a list of them, or "all"."""
    names = list(ENGINES) if engine == "all" else [engine] if isinstance(engine, str) else list(engine)
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine {unknown[0]!r}; expected one of {', '.join(ENGINES)} or all")
    return names


def check_arguments(variant: str, replicas: int, steps: int, batch: int) -> None:
    """Refuse what cannot be compared, before anything starts."""
    if replicas < 2:
        raise ValueError(f"replicas must be at least 2 to compare with one process; found {replicas}")
    if batch % replicas:
        raise ValueError(f"the global batch {batch} must split evenly over {replicas} replicas; use a multiple of "
                         f"{replicas}")
    if variant == "cifar" and batch // replicas < 2:
        raise ValueError(f"cifar's BatchNorm needs at least 2 samples per replica; found {batch // replicas}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; found {steps}")


def _module(framework: str):
    if framework == "torch":
        from parity import replicas_torch as module
    else:
        from parity import replicas_keras as module
    return module


def check_replicas(engine="all", variant: str = "cifar", replicas: int = 2, steps: int = 2, batch: int | None = None,
                   seed: int = 0) -> ReplicasReport:
    """``replicas`` replicas of each engine (a name in ``ENGINES``, a list of names, or "all")
    against one process of its framework: one row per engine, judged by one criterion; on ``cifar``
    an engine that can switch BatchNorm synchronization off adds a row without it."""
    names = engine_names(engine)
    batch = batch or default_batch(variant, replicas)
    check_arguments(variant, replicas, steps, batch)
    report = ReplicasReport(variant, steps, batch, seed)
    for framework in dict.fromkeys(ENGINES[n].framework for n in names):
        module = _module(framework)
        began = time.perf_counter()
        start, states, losses = module.reference(framework, variant, steps, batch, seed)
        weights, statistics = split(start)
        s32, s64, rev = states["fp32"], states["float64"], states["reordered"]

        def measure(a, b, keys, i, start=start, s64=s64):
            return difference(a[i], b[i], start, s64[i], keys)

        f64 = [measure(s32, s64, weights, i) for i in (0, 1)]
        reordered = [measure(s32, rev, weights, i) for i in (0, 1)]
        stats = [max(measure(s32, s64, statistics, i), measure(s32, rev, statistics, i)) for i in (0, 1)] \
            if statistics else None
        floors = Floors(f64, reordered, [max(a, b) for a, b in zip(f64, reordered)], stats)
        report.references[framework] = Reference(framework, floors, losses, round(time.perf_counter() - began, 1))
        for name in (n for n in names if ENGINES[n].framework == framework):
            syncs = (True, False) if statistics and ENGINES[name].unsynchronized else (True,)
            began = time.perf_counter()
            runs = module.run_engine(name, variant, replicas, steps, batch, seed, start=start, syncs=syncs)
            seconds = round((time.perf_counter() - began) / len(syncs), 1)
            for sync in syncs:
                got, rep_losses = runs[sync]
                drift = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(rep_losses, losses))
                batchnorm = None if not statistics else "per replica" if not sync else \
                    "global batch" if framework == "jax" else "synchronized"
                row = EngineRow(name if sync else f"{name}, no SyncBN", framework, replicas, batch // replicas,
                                batchnorm, [measure(got, s32, weights, i) for i in (0, 1)],
                                [measure(got, s32, statistics, i) for i in (0, 1)] if statistics else None,
                                measure(got, s64, weights, 1), drift, rep_losses, seconds, judged=sync)
                row.ok = report.judge(row)
                report.rows[row.engine] = row
    return report


__all__ = ["DEFAULT_BATCH", "DRIFT_RTOL", "ENGINES", "FLOOR_MULTIPLE", "Engine", "EngineRow", "Floors", "Reference",
           "ReplicasReport", "check_replicas", "difference", "split"]
