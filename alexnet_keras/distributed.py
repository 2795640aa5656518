"""Data-parallel ``model.fit`` on Keras's own engines: ``tf.distribute`` on TensorFlow, ``keras.distribution``
on JAX. ``model.fit`` stays the training loop; this module only chooses the devices and the scope.

=================  ===========  =================================================================
``kind``           backend      what runs
=================  ===========  =================================================================
``mirrored``       tensorflow   ``tf.distribute.MirroredStrategy``: one process, N devices (GPUs,
                                or N logical devices carved out of the CPU)
``multi-worker``   tensorflow   ``tf.distribute.MultiWorkerMirroredStrategy``: one process per
                                worker, the cluster described by ``TF_CONFIG``
``data-parallel``  jax          ``keras.distribution.DataParallel``: one process, N JAX devices
                                (on CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=N``)
=================  ===========  =================================================================

Device counts are fixed when the framework starts, so :func:`prepare` runs before Keras is imported.
Each step reads one global batch and splits it over the replicas; gradients are averaged, so N
replicas with B/N images each take the step one process takes with B. BatchNorm: on TensorFlow each
replica would normalize by its own B/N images (:func:`synchronize_batchnorm` makes the statistics
global); under JAX ``DataParallel`` the batch is one sharded array and its mean is already global.

TensorFlow and JAX are imported here only inside the functions of their own engine; this module
never imports torch. :func:`launch_local_workers` (standard library only) runs a multi-worker job's
workers on this machine and watches them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

KINDS = {"mirrored": "tensorflow", "multi-worker": "tensorflow", "data-parallel": "jax"}
ENGINE_NAMES = {"mirrored": "tf MirroredStrategy", "multi-worker": "tf MultiWorkerMirroredStrategy",
                "data-parallel": "jax DataParallel"}
_HOST_DEVICES = "--xla_force_host_platform_device_count"
# The Keras releases (major.minor) whose multi-worker fit :func:`_repair_multi_worker_fit` was
# verified on: there tests/test_distributed_keras.py finds the repaired fit equal to one process, and
# the unrepaired fit still failing. Another release is refused for multi-worker until it is measured.
REPAIR_VERIFIED_KERAS = ("3.15",)


class DistributeError(ValueError):
    """A distribution request this process cannot honour; the message says what to do instead."""


@dataclass
class Replicas:
    """Where ``model.fit`` runs: build and compile the model inside :meth:`scope`."""

    kind: str
    num_replicas: int
    devices: list[str]
    chief: bool = True  # writes the run's files; the other workers of a multi-worker job write nothing
    worker: int = 0
    num_workers: int = 1
    strategy: object = field(default=None, repr=False)

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        where = f"worker {self.worker} of {self.num_workers}, " if self.num_workers > 1 else ""
        return f"{ENGINE_NAMES[self.kind]}: {where}{self.num_replicas} replicas ({', '.join(self.devices)})"


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise DistributeError(f"unknown distribution {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind]


def requested_backend() -> str:
    """The backend Keras will start with, read the way Keras reads it, without importing Keras."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    config = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "keras.json")
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def check_backend(kind: str) -> None:
    """Refuse an engine of another backend than the one Keras runs (or will start) on, and
    ``multi-worker`` on a Keras release its repair was not verified on."""
    backend, found = check_kind(kind), requested_backend()
    if kind == "multi-worker":
        check_keras_for_multi_worker()
    if backend != found:
        other = [k for k, b in KINDS.items() if b == found]
        instead = f" On {found}, use --distribute {other[0]}." if other else f" There is no engine here for {found}."
        raise DistributeError(f"--distribute {kind} needs the {backend} backend; this Keras runs on {found} "
                              f"(KERAS_BACKEND={found}). Set KERAS_BACKEND={backend}.{instead}")


def keras_release() -> str:
    """The installed Keras's major.minor, read without importing Keras."""
    from importlib.metadata import version

    return ".".join(version("keras").split(".")[:2])


def check_keras_for_multi_worker() -> None:
    release = keras_release()
    if release not in REPAIR_VERIFIED_KERAS:
        verified = ", ".join(REPAIR_VERIFIED_KERAS)
        raise DistributeError(
            f"--distribute multi-worker: Keras {release}'s fit fails under MultiWorkerMirroredStrategy "
            f"(keras-team/keras#20585) unless repaired, and this project's repair was verified on Keras {verified} "
            f"only. Install one of those (pip install 'keras=={REPAIR_VERIFIED_KERAS[-1]}.*'), or use "
            "--distribute mirrored (the devices of one machine).")


def prepare(kind: str, devices: int | None = None) -> None:
    """Before Keras starts: refuse an engine of another backend, and give the process ``devices``
    devices where it can only be done now (logical CPU devices on TensorFlow, host devices on JAX)."""
    check_backend(kind)
    if devices is not None and devices < 1:
        raise DistributeError(f"--devices must be at least 1; found {devices}")
    if kind == "data-parallel" and devices:
        _request_host_devices(devices)
    if kind == "mirrored" and devices:
        _split_cpu(devices)


def _request_host_devices(devices: int) -> None:
    """Read when JAX starts its CPU backend (its first computation), not at ``import jax``; if it
    has started already, :func:`replicas` finds too few devices and says so."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_HOST_DEVICES)]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"{_HOST_DEVICES}={devices}"])


def _split_cpu(devices: int) -> None:
    """N logical CPU devices, unless there are N GPUs to mirror over."""
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) >= devices:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError as err:  # TensorFlow has initialized its devices already
        raise DistributeError(f"cannot split the CPU into {devices} devices: TensorFlow has already started in "
                              f"this process ({err}). Call alexnet_keras.distributed.prepare before anything "
                              "runs a TensorFlow operation.") from None


def replicas(kind: str, devices: int | None = None, *, timeout_s: float | None = None) -> Replicas:
    """The engine ``kind`` over ``devices`` devices (default: all there are). Call :func:`prepare` first."""
    prepare(kind, devices)
    if kind == "mirrored":
        return _mirrored(devices)
    if kind == "multi-worker":
        return _multi_worker(devices, timeout_s)
    return _data_parallel(devices)


def _mirrored(devices):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    pool = gpus if gpus and len(gpus) >= (devices or 1) else tf.config.list_logical_devices("CPU")
    names = [d.name for d in pool]
    if devices is not None and len(names) < devices:
        raise DistributeError(f"--devices {devices}: this process has {len(names)} device(s) ({', '.join(names)})")
    names = names[:devices] if devices else names
    return Replicas("mirrored", len(names), names, strategy=tf.distribute.MirroredStrategy(names))


def parse_tf_config(text: str) -> dict:
    """This worker's place in the ``TF_CONFIG`` cluster: ``chief`` (writes the files), ``worker``
    (0-based over the cluster), ``num_workers``."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise DistributeError(f"TF_CONFIG is not a cluster description ({err!r}); expected "
                              '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}') from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    number = index + (1 if kind == "worker" and "chief" in cluster else 0)
    return {"chief": chief, "worker": number, "num_workers": workers, "task": f"/job:{kind}/task:{index}"}


def _multi_worker(devices, timeout_s):
    import tensorflow as tf

    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributeError("--distribute multi-worker reads the cluster from TF_CONFIG, which is not set. Set it on "
                              "every machine (see docs/scaling.md), or give --devices N to run N workers here.")
    place = parse_tf_config(text)
    if devices is not None:
        raise DistributeError("--devices with TF_CONFIG set: a multi-worker job has one device per worker here; "
                              "drop --devices (the cluster is TF_CONFIG's), or unset TF_CONFIG to run --devices workers "
                              "on this machine")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s) if timeout_s else None
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return Replicas("multi-worker", strategy.num_replicas_in_sync, [place["task"]], chief=place["chief"],
                    worker=place["worker"], num_workers=place["num_workers"], strategy=strategy)


def _data_parallel(devices):
    import jax
    import keras

    found = jax.devices()
    if devices is not None and len(found) < devices:
        raise DistributeError(f"--devices {devices}: JAX has started with {len(found)} device(s). On CPU, "
                              f"{_HOST_DEVICES}={devices} must be in XLA_FLAGS before jax is imported (prepare() "
                              "sets it when it runs first).")
    chosen = found[:devices] if devices else found
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
    return Replicas("data-parallel", len(chosen), [str(d) for d in chosen])


def check_batch(batch: int, replicas: Replicas) -> int:
    """The per-replica batch: the global ``batch`` split evenly, or an error saying how to fix it."""
    n = replicas.num_replicas
    if batch % n:
        lower, upper = batch - batch % n, batch + n - batch % n
        raise DistributeError(f"--batch-size {batch} is the global batch and must split evenly over {n} replicas; "
                              f"use {lower or upper} or {upper}")
    return batch // n


def synchronize_batchnorm(model, on: bool = True) -> int:
    """BatchNorm statistics over the global batch on TensorFlow (``synchronized=True``, read at call
    time, so this may follow the build); a no-op elsewhere, where the layer refuses the flag and a
    sharded JAX batch is normalized globally anyway. Returns how many layers were set."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized = on
    return len(layers)


def prepare_model(model, replicas: Replicas) -> None:
    """What ``model`` (built in ``replicas.scope()``) needs before ``fit`` on this engine: global
    BatchNorm statistics, and on ``multi-worker`` the two repairs below."""
    synchronize_batchnorm(model)
    if replicas.kind == "multi-worker":
        check_keras_for_multi_worker()
        _repair_multi_worker_fit(model, replicas.strategy)


def _repair_multi_worker_fit(model, strategy) -> None:
    """Keras 3.15's TensorFlow trainer fails ``fit`` under ``MultiWorkerMirroredStrategy``
    (keras-team/keras#20585, open; tensorflow#72388) in two places, measured here:

    1. ``_maybe_symbolic_build`` passes the first (x, y) batch, a tuple of ``PerReplica``, to
       ``strategy.reduce``, which takes one value: "Attempt to convert a value (PerReplica ...)".
       The build needs only shapes, so it is given this worker's own first replica batch.
    2. every step's logs are reduced with ``strategy.reduce("MEAN", v, axis=0)``, which fails on
       the scalar logs ("Invalid reduction dimension 0 for input with 0 dimensions").
       ``train_step``/``test_step`` (Keras's customization point) return them as shape (1,);
       their values are global already (metric variables sum over replicas), so the mean over
       replicas returns them unchanged.

    Both touch this model instance only, and run only on :data:`REPAIR_VERIFIED_KERAS` (private
    methods: another release may need another repair, or none;
    ``test_keras_multi_worker_fit_still_needs_the_repair`` says when upstream has fixed it)."""
    import keras
    import tensorflow as tf

    def local(value):
        return strategy.experimental_local_results(value)[0] if isinstance(value, tf.distribute.DistributedValues) else value

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(local, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def vector_logs(step):
        def wrapped(data):
            return {name: keras.ops.reshape(value, (1,)) for name, value in step(data).items()}
        return wrapped

    model._maybe_symbolic_build = symbolic_build
    model.train_step = vector_logs(model.train_step)
    model.test_step = vector_logs(model.test_step)


# --- several worker processes on this machine ---------------------------------------------------


class WorkerFailed(RuntimeError):
    """A worker of a local multi-worker job died; the others were stopped. Its message is the
    user's (the command line prints it as it is, not as a bug)."""

    for_user = True


def free_ports(n: int) -> list[int]:
    """``n`` distinct localhost ports free now (held together while chosen, so never the same)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})


def launch_local_workers(command: list[str], workers: int, *, fault_timeout_s: float = 60.0, timeout_s: float | None = None,
                         env: dict | None = None, cwd=None, output=None) -> None:
    """Run ``command`` as ``workers`` processes, each with its ``TF_CONFIG`` on a free localhost port,
    and watch them: the first to fail stops the job. The others get ``fault_timeout_s`` to stop by
    themselves (a collective waiting on a dead peer may never return), then they are killed; so
    is everything at ``timeout_s`` or on an interrupt. Raises :class:`WorkerFailed` saying which."""
    ports, procs = free_ports(workers), []
    base = dict(os.environ if env is None else env)
    began = time.monotonic()
    try:
        for index in range(workers):
            procs.append(subprocess.Popen(command, env={**base, "TF_CONFIG": tf_config(ports, index)}, cwd=cwd,
                                          stdout=output, stderr=output))  # our process group: a kill of it ends all
        failed = None
        while True:
            codes = [p.poll() for p in procs]
            if all(c == 0 for c in codes):
                return
            bad = next((i for i, c in enumerate(codes) if c not in (None, 0)), None)
            if bad is not None:
                failed = (bad, codes[bad])
                break
            if timeout_s is not None and time.monotonic() - began > timeout_s:
                raise WorkerFailed(f"the {workers} workers did not finish within {timeout_s:.0f} s; all were killed")
            time.sleep(0.2)
        index, code = failed
        how = f"was killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"
        deadline = time.monotonic() + fault_timeout_s
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        stuck = [i for i, p in enumerate(procs) if p.poll() is None]
        after = (f"worker(s) {', '.join(map(str, stuck))} still waited on it after {fault_timeout_s:.0f} s and "
                 "were killed" if stuck else "the other workers stopped")
        raise WorkerFailed(f"worker {index} of {workers} {how}; {after}. The run folder keeps the last complete "
                           "epoch: run the same command with --resume to continue from it.")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


__all__ = [
    "ENGINE_NAMES",
    "KINDS",
    "DistributeError",
    "Replicas",
    "WorkerFailed",
    "check_backend",
    "check_batch",
    "free_ports",
    "launch_local_workers",
    "parse_tf_config",
    "prepare",
    "prepare_model",
    "replicas",
    "requested_backend",
    "synchronize_batchnorm",
    "tf_config",
]
