"""Keras's data-parallel engines, engines of ``parity.replicas``: how one Keras process and its
replicas produce the states that check judges.

For each backend, from the same initial weights and the same global batches (dropout off), ``steps``
SGD steps of ``model.fit`` (``alexnet_keras.training.compile_for_training``: momentum 0.9, decoupled
weight decay 5e-4, lr 0.01) run

- in one process with the global batch B, in fp32 (the reference), in float64, and in fp32 fed
  each batch's samples in reverse order (the floor's three runs: :func:`reference`);
- on the engine with ``replicas`` replicas of B/N images each, in fp32 (:func:`run_engine`).

Each run returns its variables after step 1 and after the last step (a callback reads them) and the
loss of every step (from the running mean ``fit`` logs). ``cifar`` needs BatchNorm statistics over
the global batch: on TensorFlow the engines set ``synchronized=True``, and MirroredStrategy also runs
without it (``syncs``); under JAX ``DataParallel`` the batch is one sharded array and nothing needs
synchronizing: the check measures it. ``cifar`` reads augmented digits; the other variants seeded
images.

Every run is a child process (device counts are fixed when a framework starts), each bounded by
``timeout_s`` and killed in a ``finally``. A one-process floor can be large: where a ReLU's input
lies within fp32 rounding of zero, fp32 and float64 take different sides of it and the step's
gradient jumps (seed 0: one fc1 unit of one image on TensorFlow ``cifar`` at batch 8; one conv3 unit
on JAX ``paper`` at batch 4; docs/scaling.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD_TIMEOUT_S = 600.0
# the training-step check's SGD: one set of numbers for every proof
from parity.steps import DEFAULT_LEARNING_RATE as LEARNING_RATE  # noqa: E402
from parity.steps import DEFAULT_MOMENTUM as MOMENTUM  # noqa: E402
from parity.steps import DEFAULT_WEIGHT_DECAY as WEIGHT_DECAY  # noqa: E402


class EngineFailed(RuntimeError):
    """A child process of an engine failed or ran past its time; its output's end is in the message."""


# --- the parent: data, children, comparison ---------------------------------------------------------


KINDS = {"tf MirroredStrategy": "mirrored", "tf MultiWorkerMirroredStrategy": "multi-worker",
         "jax DataParallel": "data-parallel"}  # parity.replicas's engine name -> alexnet_keras.distributed's kind


def tf_mirrored(variant: str, replicas: int, steps: int, batch: int, seed: int, *, start: dict, syncs=(True,),
                timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``tf.distribute.MirroredStrategy`` over ``replicas`` logical CPU devices of one process."""
    return _engine("mirrored", variant, replicas, steps, batch, seed, start, syncs, timeout_s)


def tf_multi_worker(variant: str, replicas: int, steps: int, batch: int, seed: int, *, start: dict, syncs=(True,),
                    timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``tf.distribute.MultiWorkerMirroredStrategy``: ``replicas`` worker processes on localhost ports."""
    return _engine("multi-worker", variant, replicas, steps, batch, seed, start, syncs, timeout_s)


def jax_data_parallel(variant: str, replicas: int, steps: int, batch: int, seed: int, *, start: dict, syncs=(True,),
                      timeout_s: float = CHILD_TIMEOUT_S) -> dict:
    """``keras.distribution.DataParallel`` over ``replicas`` JAX host devices of one process."""
    return _engine("data-parallel", variant, replicas, steps, batch, seed, start, syncs, timeout_s)


def run_engine(name: str, variant: str, replicas: int, steps: int, batch: int, seed: int, *, start: dict,
               syncs=(True,)) -> dict:
    """``parity.replicas``'s entry: ``{synchronized: ([state after step 1, after the last], losses)}``,
    the engine started from ``start`` (:func:`reference`'s initial weights)."""
    function = {"mirrored": tf_mirrored, "multi-worker": tf_multi_worker, "data-parallel": jax_data_parallel}[KINDS[name]]
    return function(variant, replicas, steps, batch, seed, start=start, syncs=syncs)


def reference(framework: str, variant: str, steps: int, batch: int, seed: int, *,
              timeout_s: float = CHILD_TIMEOUT_S) -> tuple[dict, dict, list[float]]:
    """One process of ``framework`` ("tensorflow" or "jax"): the initial weights, the states after
    step 1 and the last step of fp32, float64 and fp32 fed each batch reversed, and the fp32 losses."""
    if framework not in ("tensorflow", "jax"):
        raise ValueError(f"Keras's engines run on tensorflow or jax; found {framework!r}")
    with tempfile.TemporaryDirectory(prefix="alexnet-replicas-") as tmp:
        work = Path(tmp)
        _write_batches(work / "batches.npz", variant, steps, batch, seed)
        job = {"variant": variant, "seed": seed, "work": str(work), "role": "reference"}
        env = {"KERAS_BACKEND": framework}
        _child({**job, "precision": "float32", "orders": ["forward", "reversed"]}, env, timeout_s)
        _child({**job, "precision": "float64"}, {**env, "JAX_ENABLE_X64": "1"} if framework == "jax" else env, timeout_s)
        start = _load(work / "init.npz")
        (f32, losses), (f64, _), (rev, _) = (_load_run(work / f"{n}.npz") for n in ("float32", "float64", "reversed"))
    return start, {"fp32": f32, "float64": f64, "reordered": rev}, losses


def _engine(kind, variant, replicas, steps, batch, seed, start, syncs, timeout_s) -> dict:
    from alexnet_keras.distributed import KINDS as BACKENDS

    backend = BACKENDS[kind]
    with tempfile.TemporaryDirectory(prefix="alexnet-replicas-") as tmp:
        work = Path(tmp)
        _write_batches(work / "batches.npz", variant, steps, batch, seed)
        np.savez(work / "init.npz", **start)
        job = {"variant": variant, "seed": seed, "work": str(work), "role": "replicas", "kind": kind,
               "replicas": replicas, "sync": [bool(s) for s in syncs]}
        env = {"KERAS_BACKEND": backend}
        if kind == "multi-worker":
            _workers(job, replicas, env, timeout_s)
        else:
            _child(job, {**env, **({"XLA_FLAGS": f"--xla_force_host_platform_device_count={replicas}"}
                                   if backend == "jax" else {})}, timeout_s)
        return {sync: _load_run(work / f"replicas-sync{int(sync)}.npz") for sync in syncs}


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


def _load(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _save_run(path, states: list[dict], losses: list[float]) -> None:
    arrays = {f"{i}/{k}": v for i, state in enumerate(states) for k, v in state.items()}
    np.savez(path, losses=np.asarray(losses, dtype=np.float64), **arrays)


def _load_run(path) -> tuple[list[dict], list[float]]:
    """([state after step 1, after the last step] as float64, the losses of every step)."""
    arrays = _load(path)
    losses = [float(v) for v in arrays.pop("losses")]
    states = [{}, {}]
    for key, value in arrays.items():
        i, _, name = key.partition("/")
        states[int(i)][name] = value.astype(np.float64)
    return states, losses


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
    if replicas is None:
        for order in job.get("orders", ["forward"]):  # "reversed": each batch's samples in reverse order
            run = data if order == "forward" else {"x": data["x"][:, ::-1], "y": data["y"][:, ::-1]}
            _save_run(work / f"{job['precision'] if order == 'forward' else order}.npz", *_fit(job, run, None, True))
        return
    for sync in job["sync"]:
        states, losses = _fit(job, data, replicas, sync)
        if replicas.chief:
            _save_run(work / f"replicas-sync{int(sync)}.npz", states, losses)


def _fit(job, data, replicas, sync) -> tuple[list[dict], list[float]]:
    import contextlib

    import keras

    from dataclasses import replace

    import alexnet_keras
    from alexnet_keras.training import compile_for_training
    from alexnet_training.recipes import CIFAR

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
        if not init.exists():  # the fp32 reference's first run draws the initial weights
            np.savez(init, **{v.path: np.asarray(v) for v in floats})
        start = _load(init)
        for v in floats:
            v.assign(start[v.path].astype(keras.backend.standardize_dtype(v.dtype)))
        if replicas is not None:
            from alexnet_keras.distributed import prepare_model, synchronize_batchnorm

            prepare_model(model, replicas)
            synchronize_batchnorm(model, sync)
        # what alexnet-train compiles, with this check's numbers; no metrics (TensorFlow's top-k
        # refuses float64)
        compile_for_training(model, replace(CIFAR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY), LEARNING_RATE,
                             metrics=False)
    x = data["x"].astype(keras.config.floatx())
    steps = _steps_class()(floats, len(x))
    model.fit(_batches(x, data["y"]), epochs=1, shuffle=False, verbose=0, callbacks=[steps])
    return steps.states, steps.losses


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


def _steps_class():
    import keras

    class Steps(keras.callbacks.Callback):
        """The variables after step 1 and the last step, and the loss of every step: ``fit`` logs
        the running mean over the epoch's (equal) batches, so step k's loss is k m_k - (k-1) m_(k-1)."""

        def __init__(self, variables, steps):
            super().__init__()
            self.variables, self.steps, self.states, self.losses, self.mean = variables, steps, [], [], 0.0

        def on_train_batch_end(self, batch, logs=None):
            mean = float(np.asarray(logs["loss"]).reshape(-1)[0])
            self.losses.append((batch + 1) * mean - batch * self.mean)
            self.mean = mean
            if batch in (0, self.steps - 1):
                self.model  # noqa: B018  (on JAX, reading the model attaches the step's state to the variables)
                state = {v.path: np.array(v) for v in self.variables}
                self.states += [state] * (1 + (self.steps == 1))

    return Steps


__all__ = ["KINDS", "EngineFailed", "jax_data_parallel", "reference", "run_engine", "tf_mirrored", "tf_multi_worker"]


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
