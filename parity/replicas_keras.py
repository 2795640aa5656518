"""N replicas compute what one process computes: Keras's data-parallel engines against one process.

For each engine, from the same initial weights and the same global batches (dropout off), ``steps``
SGD steps of ``model.fit`` (``alexnet_keras.training.compile_for_training``: momentum 0.9, decoupled
weight decay 5e-4, lr 0.01) run

- in one process with the global batch B (fp32): the reference;
- in one process in float64: what the reference would be without rounding;
- on the engine with ``replicas`` replicas of B/N images each (fp32).

Each difference is measured per variable (weights and BatchNorm moving statistics) relative to the
largest float64 change of that variable over the steps (the weights themselves hide the
difference: the steps move them by a small fraction), and the maximum over variables is reported:

- ``difference``: replicas against the one-process reference;
- ``fp32_floor``: the reference against float64, the rounding fp32 allows one process;
- ``replicas_vs_float64``: the replicas against float64.

``ok``: ``difference`` within ``FLOOR_FACTOR`` fp32 floors. A floor can be large: where a ReLU's
input lies within fp32 rounding of zero, fp32 and float64 take different sides of it and the step's
gradient jumps (seed 0: one fc1 unit of one image on TensorFlow ``cifar`` at batch 8, 0.2 of fc1's
change after one step; one conv3 unit on JAX ``paper`` at batch 4; docs/scaling.md). So
``replicas_vs_float64`` is reported beside it.

Replicas sum their gradients in another order than one process, so ``paper`` is equal up to fp32
reduction order: ``difference`` of the order of ``fp32_floor``. ``cifar`` needs BatchNorm statistics
over the global batch: on TensorFlow the engines set ``synchronized=True``; ``mirrored`` also
measures the run without it (``difference_without_sync``), which is what replicas that normalize by
their own B/N images compute. Under JAX ``DataParallel`` the batch is one sharded array and nothing
needs synchronizing: the difference measures it.

Every engine runs in child processes (device counts are fixed when a framework starts), each
bounded by ``timeout_s`` and killed in a ``finally``. Engines: :func:`keras_engines`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Replicas within this many fp32 floors of one process count as equal (measured: docs/scaling.md).
FLOOR_FACTOR = 10.0
CHILD_TIMEOUT_S = 600.0
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


class EngineFailed(RuntimeError):
    """A child process of an engine failed or ran past its time; its output's end is in the message."""


# --- the parent: data, children, comparison ---------------------------------------------------------


def tf_mirrored(variant: str, replicas: int, steps: int, batch: int, seed: int, *, timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``tf.distribute.MirroredStrategy`` over ``replicas`` logical CPU devices of one process."""
    return _engine("mirrored", variant, replicas, steps, batch, seed, timeout_s)


def tf_multi_worker(variant: str, replicas: int, steps: int, batch: int, seed: int, *,
                    timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``tf.distribute.MultiWorkerMirroredStrategy``: ``replicas`` worker processes on localhost ports."""
    return _engine("multi-worker", variant, replicas, steps, batch, seed, timeout_s)


def jax_data_parallel(variant: str, replicas: int, steps: int, batch: int, seed: int, *,
                      timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``keras.distribution.DataParallel`` over ``replicas`` JAX host devices of one process."""
    return _engine("data-parallel", variant, replicas, steps, batch, seed, timeout_s)


def keras_engines() -> dict:
    """Engine name -> function ``(variant, replicas, steps, batch, seed) -> dict``."""
    return {"tf MirroredStrategy": tf_mirrored, "tf MultiWorkerMirroredStrategy": tf_multi_worker,
            "jax DataParallel": jax_data_parallel}


@dataclass
class KerasReplicasReport:
    """The Keras engines' rows for one variant: each against its own one-process and float64 runs."""

    variant: str
    rows: dict[str, dict] = field(default_factory=dict)  # engine name -> the engine function's dict

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.rows.values())

    def to_dict(self) -> dict:
        return {"variant": self.variant, "ok": self.ok, "floor_factor": FLOOR_FACTOR, "rows": self.rows}

    def __str__(self) -> str:
        head = ["engine", "replicas x batch", "vs one process", "fp32 floor", "floors", "vs float64",
                "without sync", "seconds", ""]
        body = [[name, f"{r['replicas']} x {r['replica_batch']}", f"{r['difference']:.2e}", f"{r['fp32_floor']:.2e}",
                 f"{r['ratio']:.2f}", f"{r['replicas_vs_float64']:.2e}",
                 f"{r['difference_without_sync']:.2e}" if "difference_without_sync" in r else "-",
                 f"{r['seconds']:.1f}", "ok" if r["ok"] else "FAIL"] for name, r in self.rows.items()]
        widths = [max(len(c) for c in col) for col in zip(head, *body)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        first = next(iter(self.rows.values()))
        title = (f"{self.variant}: Keras replicas vs one process, {first['steps']} SGD steps of model.fit at global "
                 f"batch {first['batch']} (seed {first['seed']}, dropout off); the final weights, relative to each "
                 "variable's float64 change")
        lines = [title, fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)]
        bad = [n for n, r in self.rows.items() if not r["ok"]]
        if bad:
            lines.append(f"FAIL: {', '.join(bad)} beyond {FLOOR_FACTOR:g}x the fp32 floor: the replicas do not "
                         "compute what one process does")
        else:
            lines.append(f"PASS: {self.variant}: every Keras engine's replicas end within {FLOOR_FACTOR:g}x the fp32 "
                         "floor of one process")
        return "\n".join(lines)


def check_keras_replicas(engines, variant: str, replicas: int, steps: int, batch: int, seed: int) -> KerasReplicasReport:
    """Run each named engine of :func:`keras_engines` and collect its row."""
    table = keras_engines()
    report = KerasReplicasReport(variant)
    for name in engines:
        report.rows[name] = table[name](variant, replicas, steps, batch, seed)
    return report


def _engine(kind, variant, replicas, steps, batch, seed, timeout_s) -> dict:
    from alexnet_keras.distributed import ENGINE_NAMES, KINDS

    if replicas < 1 or steps < 1:
        raise ValueError(f"replicas and steps must be at least 1; found {replicas} and {steps}")
    if batch % replicas or batch // replicas < (2 if variant == "cifar" else 1):
        raise ValueError(f"batch {batch} must split into {replicas} equal replica batches"
                         + (" of at least 2 (BatchNorm)" if variant == "cifar" else ""))
    backend = KINDS[kind]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alexnet-replicas-") as tmp:
        work = Path(tmp)
        _write_batches(work / "batches.npz", variant, steps, batch, seed)
        job = {"variant": variant, "seed": seed, "work": str(work)}
        env = {"KERAS_BACKEND": backend}
        _child({**job, "role": "reference", "precision": "float32"}, env, timeout_s)
        f64_env = {**env, "JAX_ENABLE_X64": "1"} if backend == "jax" else env
        _child({**job, "role": "reference", "precision": "float64"}, f64_env, timeout_s)
        sync = [True, False] if kind == "mirrored" and variant == "cifar" else [True]
        run = {**job, "role": "replicas", "kind": kind, "replicas": replicas, "sync": sync}
        if kind == "multi-worker":
            _workers(run, replicas, env, timeout_s)
        else:
            _child(run, {**env, **({"XLA_FLAGS": f"--xla_force_host_platform_device_count={replicas}"}
                                   if backend == "jax" else {})}, timeout_s)
        init, f32, f64 = (_load(work / f"{n}.npz") for n in ("init", "float32", "float64"))
        floor, _ = _relative(f32, f64, init, f64)
        result = {"engine": ENGINE_NAMES[kind], "variant": variant, "replicas": replicas, "steps": steps, "batch": batch,
                  "replica_batch": batch // replicas, "seed": seed, "fp32_floor": floor}
        for on in sync:
            run = _load(work / f"replicas-sync{int(on)}.npz")
            suffix = "" if on else "_without_sync"
            result["difference" + suffix], result["worst_variable" + suffix] = _relative(run, f32, init, f64)
            result["replicas_vs_float64" + suffix], _ = _relative(run, f64, init, f64)
        if variant == "cifar":
            result["batchnorm"] = "global batch (sharded array)" if kind == "data-parallel" else "synchronized=True"
    result["ratio"] = result["difference"] / result["fp32_floor"] if result["fp32_floor"] else float("inf")
    result["ok"] = result["difference"] <= FLOOR_FACTOR * result["fp32_floor"]
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def _write_batches(path, variant, steps, batch, seed) -> None:
    """The global batches every run reads: augmented digits for ``cifar``, seeded images otherwise."""
    from alexnet_spec import get_spec

    spec = get_spec(variant)
    if variant == "cifar":
        from alexnet_training.augment import Pipeline
        from alexnet_training.data import load_digits
        from alexnet_training.recipes import CIFAR

        pipeline = Pipeline(load_digits()[0], CIFAR.augment, train=True, seed=seed, batch_size=batch)
        pairs = [pipeline.batch(s % pipeline.num_batches, s // pipeline.num_batches) for s in range(steps)]
        x, y = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    else:
        rng = np.random.default_rng([seed, 0x3E91])
        size = spec.input_size
        x = rng.standard_normal((steps, batch, size, size, 3)).astype(np.float32)
        y = rng.integers(0, spec.num_classes, size=(steps, batch))
    np.savez(path, x=x, y=y.astype(np.int64))


def _relative(a: dict, b: dict, init: dict, f64: dict) -> tuple[float, str]:
    """max over variables of max|a - b| / (the largest float64 change in the variable's group); and
    the variable where it peaks. A group is a layer's weights, or its moving statistics: a bias ahead
    of a BatchNorm has no gradient (the batch mean removes it), so its own change is weight decay
    alone, below fp32's grain, and would make rounding look like an error (as in parity.steps)."""
    scales: dict[str, float] = {}
    for key, start in init.items():
        scales[_group(key)] = max(scales.get(_group(key), 0.0), float(np.max(np.abs(f64[key] - start))))
    worst, name = 0.0, ""
    for key in init:
        scale = scales[_group(key)]
        if scale == 0:
            continue
        rel = float(np.max(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64)))) / scale
        if rel > worst:
            worst, name = rel, key
    return worst, name


def _group(path: str) -> str:
    layer, _, variable = path.rpartition("/")
    return layer + ("/moving" if variable.startswith("moving_") else "")


def _load(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _env(extra: dict) -> dict:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**keep, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _command(job: dict) -> list[str]:
    return [sys.executable, "-m", "parity.replicas_keras", json.dumps(job)]


def _child(job: dict, env: dict, timeout_s: float) -> None:
    proc = subprocess.Popen(_command(job), env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise EngineFailed(f"{job['role']} child ({env}) ran past {timeout_s:.0f} s and was killed; it printed:\n"
                           f"{out[-3000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise EngineFailed(f"{job['role']} child ({env}) exited with {proc.returncode}; it printed:\n{out[-3000:]}")


def _workers(job: dict, workers: int, env: dict, timeout_s: float) -> None:
    from alexnet_keras.distributed import WorkerFailed, launch_local_workers

    with tempfile.TemporaryFile("w+") as log:
        try:
            launch_local_workers(_command(job), workers, env=_env(env), timeout_s=timeout_s, fault_timeout_s=30,
                                 output=log)
        except WorkerFailed as err:
            log.seek(0)
            raise EngineFailed(f"{err}; the workers printed:\n{log.read()[-3000:]}") from None


# --- the children ------------------------------------------------------------------------------------


def _main(job: dict) -> None:
    """One child: a one-process reference run, or the engine's run (its chief saves the weights)."""
    work = Path(job["work"])
    if job["role"] == "replicas":
        from alexnet_keras import distributed

        distributed.prepare(job["kind"], None if job["kind"] == "multi-worker" else job["replicas"])
    import keras

    if job.get("precision") == "float64":
        keras.config.set_floatx("float64")
    replicas = None
    if job["role"] == "replicas":
        replicas = distributed.replicas(job["kind"], None if job["kind"] == "multi-worker" else job["replicas"])
        assert replicas.num_replicas == job["replicas"], replicas.describe()
    data = _load(work / "batches.npz")
    for sync in job.get("sync", [True]):
        weights = _fit(job, data, replicas, sync)
        if replicas is None or replicas.chief:
            name = job["precision"] if replicas is None else f"replicas-sync{int(sync)}"
            np.savez(work / f"{name}.npz", **weights)


def _fit(job, data, replicas, sync) -> dict:
    import contextlib

    import keras

    import alexnet_keras
    work = Path(job["work"])
    options = {"logits": True} if job["variant"] == "cifar" else {}
    with replicas.scope() if replicas else contextlib.nullcontext():
        keras.utils.set_random_seed(job["seed"])
        model = alexnet_keras.build(job["variant"], dropout=0.0, **options)
        floats = [v for v in model.variables if "float" in str(v.dtype)]
        wrong = [v.path for v in floats if keras.backend.standardize_dtype(v.dtype) != keras.config.floatx()]
        if wrong:  # Keras caches its dtype policy: a float64 run must really be one
            raise RuntimeError(f"{job['role']} run in {keras.config.floatx()} built {wrong[0]} in another dtype; "
                               "set floatx (and the dtype policy) before the first layer is made")
        init = work / "init.npz"
        if job["role"] == "reference" and job["precision"] == "float32":
            np.savez(init, **{v.path: np.asarray(v) for v in floats})
        start = _load(init)
        for v in floats:
            v.assign(start[v.path].astype(keras.backend.standardize_dtype(v.dtype)))
        if replicas is not None:
            from alexnet_keras.distributed import prepare_model, synchronize_batchnorm

            prepare_model(model, replicas)
            synchronize_batchnorm(model, sync)
        # alexnet_keras.training.compile_for_training's optimizer and loss; no metrics (TensorFlow's
        # top-k refuses float64)
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = data["x"].astype(keras.config.floatx())
    model.fit(_batches(x, data["y"]), epochs=1, shuffle=False, verbose=0)
    return {v.path: np.asarray(v) for v in floats}


def _batches_class():
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y):
            super().__init__()
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], self.y[i]

    return Batches


def _batches(x, y):  # the class is made on first use: only the children import keras
    return _batches_class()(x, y)


__all__ = ["FLOOR_FACTOR", "EngineFailed", "KerasReplicasReport", "check_keras_replicas", "jax_data_parallel", "keras_engines", "tf_mirrored", "tf_multi_worker"]


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
