"""``python -m benchmarks.gpu --out DIR``: training steps per second on a GPU, in one go.

``paper`` and ``torchvision`` at batch 128 and 256, fp32 and bf16, in both frameworks, on synthetic
data already on the device, and torchvision's own ``torchvision.models.alexnet`` in a plain loop
(SGD, cross-entropy) as the baseline in the same process. The steps timed are the ones users run:
torch ``alexnet_torch.training.train_step`` (under ``torch.autocast`` for bf16), Keras
``train_on_batch`` on the model ``alexnet_keras.training.compile_for_training`` compiled (built under
the ``mixed_bfloat16`` policy for bf16), as ``benchmarks/training.py`` times them on a CPU.

A timed call is ``--steps`` steps, then ``torch.cuda.synchronize()``; Keras's ``train_on_batch``
returns its logs as Python numbers, which waits for the device. The call is repeated after
``--warmup`` untimed calls (cuDNN autotuning, XLA compilation). A framework that cannot reach the
device is a row saying why (``keras: jax sees no GPU``), not a crash; so is a step that fails.
``gpu.json`` and ``gpu.md`` in ``--out`` are rewritten after every row, so a run stopped at a time
limit keeps what it measured. ``--device cpu`` with tiny settings proves the script on any machine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import platform
import sys
import time
from pathlib import Path

import parity  # noqa: F401  (first: keeps triton from crashing beside TensorFlow)
import torch
import torch.nn.functional as F
import torchvision

from alexnet_cli.console import non_negative_int, positive_int
from alexnet_spec.files import atomic_write
from alexnet_spec.text import format_table
from benchmarks import report, timing
from benchmarks.training import STEP_FLOPS, _batch, _recipe

VARIANTS = ("paper", "torchvision")
BATCHES = (128, 256)
PRECISIONS = ("fp32", "bf16")
FRAMEWORKS = ("torch", "keras")
BASELINE = "torchvision.models.alexnet"  # the outside baseline, not our variant
KERAS_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}
MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MATMUL_SIZES = {"cuda": 8192, "cpu": 1024}
NAMES = ("gpu.json", "gpu.md")


def _sync(device: torch.device):
    """A call that waits for ``device``'s queued work (nothing to wait for on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_step(variant: str, x, y, precision: str, device: torch.device):
    """One ``train_step`` of a freshly built torch ``variant`` (its recipe's SGD) on ``device``."""
    import alexnet_torch
    from alexnet_torch.training import sgd, train_step
    from alexnet_training import runs

    recipe = _recipe(variant)
    torch.manual_seed(0)
    model = alexnet_torch.build(variant, **runs.model_options(variant, recipe.init)).to(device).train()
    optimizer = sgd(model, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    images, targets = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def step():
        with _autocast(precision, device):
            train_step(model, optimizer, images, targets)

    return step


def baseline_step(x, y, precision: str, device: torch.device):
    """One step of ``torchvision.models.alexnet`` in the plain loop of PyTorch's tutorials."""
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images, targets = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def step():
        with _autocast(precision, device):
            loss = F.cross_entropy(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def keras_target(device: torch.device) -> tuple[str | None, str | None]:
    """``(Keras device name, None)`` where Keras's backend can train on ``device``, else
    ``(None, why not)``."""
    try:
        import keras
    except ImportError as err:
        return None, f"keras: not importable ({err})"
    if device.type == "cpu":
        return "cpu:0", None
    backend = keras.backend.backend()
    if not _backend_gpus(backend):
        return None, f"keras: {backend} sees no GPU"
    return "gpu:0", None


def _backend_gpus(backend: str) -> int:
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(d.platform in ("gpu", "cuda") for d in jax.devices())
    if backend == "torch":
        return torch.cuda.device_count()
    return 0


def keras_step(variant: str, x, y, precision: str, device_name: str):
    """One ``train_on_batch`` of a freshly built Keras ``variant``, the batch already on the device."""
    import keras

    import alexnet_keras
    from alexnet_keras.training import compile_for_training
    from alexnet_training import runs

    recipe = _recipe(variant)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(KERAS_POLICIES[precision])  # layers take it when built
    try:
        with keras.device(device_name):
            keras.utils.set_random_seed(0)
            model = alexnet_keras.build(variant, **runs.model_options(variant, recipe.init))
            model = compile_for_training(model, recipe, metrics=False)
            images = keras.ops.convert_to_tensor(x.transpose(0, 2, 3, 1))
            targets = keras.ops.convert_to_tensor(y)
    finally:
        keras.mixed_precision.set_global_policy(previous)

    def step():
        with keras.device(device_name):
            model.train_on_batch(images, targets)

    return step


def matmul_tflops(precision: str, device: torch.device, n: int, budget: timing.Budget) -> float:
    """TFLOP/s of an ``n`` x ``n`` matrix product in ``precision`` (torch's default fp32
    matmul precision), the peak the steps are measured against."""
    dtype = MATMUL_DTYPES[precision]
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    out, sync = torch.empty_like(a), _sync(device)

    def call():
        torch.mm(a, b, out=out)
        sync()

    return 2 * n**3 / timing.seconds_per_call(call, budget)["median"] / 1e12


def time_steps(step, sync, steps: int, budget: timing.Budget) -> dict:
    """Seconds per step: each timed call runs ``steps`` steps, then waits for the device."""
    def block():
        for _ in range(steps):
            step()
        sync()

    t = timing.seconds_per_call(block, budget)
    return {"seconds_per_step": t["median"] / steps, "best_seconds_per_step": t["best"] / steps, "reps": t["reps"]}


def plan(variants, frameworks, precisions, batches) -> list[dict]:
    """Every row of a run, not measured yet: the baseline first, then torch, then Keras (whose
    backend may take the device's memory once imported)."""
    rows = []
    for framework in ("baseline",) + tuple(f for f in FRAMEWORKS if f in frameworks):
        for variant in (BASELINE,) if framework == "baseline" else variants:
            for precision in precisions:
                for batch in batches:
                    step = {"baseline": "plain loop", "torch": "train_step", "keras": "train_on_batch"}[framework]
                    rows.append({"variant": variant, "framework": "torch" if framework == "baseline" else framework,
                                 "step": step, "precision": precision, "batch": batch, "status": "not run"})
    return rows


_synthetic = functools.lru_cache(maxsize=4)(_batch)  # each (variant, batch) made once: 160 MB at paper's 256


def measure_row(row: dict, device: torch.device, args, keras_device: str | None) -> None:
    """Time one planned row in place: its rates, or a status saying why there are none."""
    from alexnet_spec import get_spec
    from benchmarks.flops import spec_flops

    shape_of = "torchvision" if row["variant"] == BASELINE else row["variant"]
    x, y = _synthetic(shape_of, row["batch"])
    if row["step"] == "plain loop":
        step, sync = baseline_step(x, y, row["precision"], device), _sync(device)
    elif row["framework"] == "torch":
        step, sync = torch_step(row["variant"], x, y, row["precision"], device), _sync(device)
    else:
        step, sync = keras_step(row["variant"], x, y, row["precision"], keras_device), (lambda: None)
    budget = timing.Budget(warmup=args.warmup, min_reps=args.repeats, min_seconds=0.0, max_seconds=args.row_seconds)
    row.update(time_steps(step, sync, args.steps, budget))
    del step
    flops = STEP_FLOPS * spec_flops(get_spec(shape_of))  # torchvision's network is the baseline's
    row["steps_per_s"] = 1 / row["seconds_per_step"]
    row["images_per_s"] = row["batch"] * row["steps_per_s"]
    row["tflops"] = row["images_per_s"] * flops / 1e12
    row["status"] = "ok"


def run(args, device: torch.device, publish) -> dict:
    """Measure every planned row, calling ``publish(results)`` after each."""
    results = {"machine": describe_machine(device), "settings": settings(args), "rows": []}
    budget = timing.Budget(warmup=1, min_reps=5, min_seconds=0.0, max_seconds=10.0)
    results["machine"]["matmul_tflops"] = {p: matmul_tflops(p, device, args.matmul_size, budget)
                                           for p in args.precisions}
    results["rows"] = plan(args.variants, args.frameworks, args.precisions, args.batches)
    start_keras = functools.cache(lambda: _start_keras(device, results["machine"]))
    began = time.monotonic()
    for row in results["rows"]:
        keras_device, why_not = None, None
        if time.monotonic() - began > args.time_limit:
            why_not = f"skipped: --time-limit {args.time_limit} s reached"
        elif row["framework"] == "keras":
            keras_device, why_not = start_keras()
        if why_not:
            row["status"] = why_not
        else:
            try:
                measure_row(row, device, args, keras_device)
            except Exception as err:  # noqa: BLE001  (one failing row must not lose the others)
                row["status"] = _error_status(err)
            _free(device, keras=row["framework"] == "keras")
        print(_line(row, results["machine"]["matmul_tflops"]), flush=True)
        publish(results)
    return results


def _start_keras(device: torch.device, machine: dict) -> tuple[str | None, str | None]:
    """:func:`keras_target`, once torch's cached GPU memory is given back; notes Keras's versions."""
    _free(device)
    target = keras_target(device)
    machine.update(_keras_versions())
    return target


def _error_status(err: Exception) -> str:
    """The first line of an error, as a row's status (an OOM message runs to many lines)."""
    first = (str(err).strip().splitlines() or [""])[0]
    return f"error: {type(err).__name__}: {first[:200]}"


def _free(device: torch.device, *, keras: bool = False) -> None:
    if keras:
        import keras as _keras

        _keras.backend.clear_session()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def describe_machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "device": device.type, "machine": platform.machine()}
    if device.type == "cuda":
        info.update({"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                     "cudnn_benchmark": torch.backends.cudnn.benchmark,
                     "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                     "float32_matmul_precision": torch.get_float32_matmul_precision()})
    return info


def _keras_versions() -> dict:
    try:
        import keras
    except ImportError:
        return {"keras": None}
    backend = keras.backend.backend()
    return {"keras": keras.__version__, "keras_backend": backend,
            "keras_backend_version": getattr(sys.modules.get(backend), "__version__", None)}


def settings(args) -> dict:
    return {"steps": args.steps, "repeats": args.repeats, "warmup": args.warmup, "batches": list(args.batches),
            "step_flops": f"{STEP_FLOPS}x forward", "data": "synthetic, on the device before timing"}


HEAD = ["variant", "framework", "step", "precision", "batch", "steps/s", "img/s", "TFLOP/s", "share of matmul",
        "status"]


def _cells(row: dict, matmul: dict) -> list[str]:
    ok = row["status"] == "ok"
    share = ok and matmul.get(row["precision"]) and row["tflops"] / matmul[row["precision"]]
    return [row["variant"], row["framework"], row["step"], row["precision"], str(row["batch"]),
            f"{row['steps_per_s']:.2f}" if ok else "-", f"{row['images_per_s']:.0f}" if ok else "-",
            f"{row['tflops']:.3g}" if ok else "-", f"{share:.2f}" if share else "-", row["status"]]


def _line(row: dict, matmul: dict) -> str:
    return "  " + "  ".join(_cells(row, matmul))


def _footer(results: dict) -> list[str]:
    m = results["machine"]
    s = results["settings"]
    keras = f"keras {m['keras']} on {m['keras_backend']} {m.get('keras_backend_version')}" if m.get("keras") else \
        "keras not run"
    mm = ", ".join(f"{p} {v:.1f}" for p, v in m["matmul_tflops"].items())
    where = m.get("gpu", f"CPU ({m['machine']})")
    return [
        f"{where}; torch {m['torch']} (CUDA {m.get('cuda')}), torchvision {m['torchvision']}, {keras}",
        f"matmul TFLOP/s: {mm} (torch.mm; share of matmul = the step's TFLOP/s over its precision's).",
        f"A step is counted as {s['step_flops']} FLOPs; each timed call is {s['steps']} steps then a device sync, "
        f"median of {s['repeats']} calls after {s['warmup']} warm-up; {s['data']}.",
    ]


def table(results: dict) -> str:
    """The printed table: one line per row, and what the machine was."""
    body = [_cells(r, results["machine"]["matmul_tflops"]) for r in results["rows"]]
    return "\n".join(format_table(HEAD, body, right=range(4, 9)) + _footer(results))


def markdown(results: dict) -> str:
    """``gpu.md``: the same table as Markdown, for docs/benchmarks.md."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + " --- |" * len(HEAD)]
    lines += ["| " + " | ".join(_cells(r, results["machine"]["matmul_tflops"])) + " |" for r in results["rows"]]
    return "\n".join(lines + [""] + _footer(results)) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu.json and gpu.md")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda (default); cpu for a smoke run of the script itself")
    parser.add_argument("--batches", type=positive_int, nargs="+", default=list(BATCHES))
    parser.add_argument("--variants", choices=VARIANTS, nargs="+", default=list(VARIANTS))
    parser.add_argument("--frameworks", choices=FRAMEWORKS, nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--precisions", choices=PRECISIONS, nargs="+", default=list(PRECISIONS))
    parser.add_argument("--steps", type=positive_int, default=10, help="steps per timed call (default 10)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed calls per row (default 5)")
    parser.add_argument("--warmup", type=non_negative_int, default=1, help="untimed calls first (default 1)")
    parser.add_argument("--row-seconds", type=positive_int, default=60,
                        help="stop repeating a row after this long (default 60)")
    parser.add_argument("--time-limit", type=positive_int, default=420,
                        help="start no row after this many seconds (default 420); the rest say 'skipped'")
    parser.add_argument("--matmul-size", type=positive_int,
                        help="the reference matmul's n (default 8192 on cuda, 1024 on cpu)")
    parser.add_argument("--force", action="store_true", help="replace gpu.json and gpu.md")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    targets = [out / name for name in NAMES]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        print(f"benchmarks.gpu: {', '.join(existing)} exist; pass --force to replace them or choose another --out",
              file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"benchmarks.gpu: --device cuda needs a GPU, and torch {torch.__version__} sees none; run it on a "
              "GPU machine, or pass --device cpu (with --batches 2 --steps 1) to try the script here",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    args.matmul_size = args.matmul_size or MATMUL_SIZES[device.type]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick each convolution's algorithm
    overwrite = args.force

    def publish(results):
        nonlocal overwrite
        report.write_json(results, targets[0], overwrite=overwrite)
        atomic_write(targets[1], lambda tmp: Path(tmp).write_text(markdown(results)), overwrite=overwrite)
        overwrite = True  # our own files from here on

    results = run(args, device, publish)
    print(table(results))
    print(f"wrote {' and '.join(map(str, targets))}")
    return 0


def _set_environment() -> None:
    """Defaults for a process of its own, before Keras is imported: Keras's default backend
    (TensorFlow) where it is installed, else jax, else torch (the GPU machines lent to this
    project have jax and torch, no TensorFlow); jax allocating as it goes, beside torch."""
    import importlib.util

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    backend = next((name for name in ("tensorflow", "jax") if importlib.util.find_spec(name)), "torch")
    os.environ.setdefault("KERAS_BACKEND", backend)


if __name__ == "__main__":
    _set_environment()
    sys.exit(main())
