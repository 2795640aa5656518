"""``python -m benchmarks.run``: every variant in both frameworks, every mode, one run.

A full run took 7.5 minutes on two quiet cores (2026-12-07);
``--quick`` repeats less. ``--only training`` runs just the training section (``benchmarks.training``: one step
per call, and one whole epoch of each framework's training loop on the same batches), whose rows
go under the JSON's ``training`` key; ``--only pipeline`` the augmentation pipeline's throughput
against torchvision.transforms.v2 (``benchmarks.pipeline``, the ``pipeline`` key). TensorFlow starts as the
commands start it (``alexnet_cli.console.tensorflow_defaults``: oneDNN on unless set).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from alexnet_cli.console import tensorflow_defaults  # noqa: E402

tensorflow_defaults()  # before TensorFlow loads: what the commands' users get

import parity  # noqa: E402, F401  (first: keeps triton from crashing beside TensorFlow)
import torch  # noqa: E402
import torchvision  # noqa: E402

from benchmarks import machine, timing  # noqa: E402
from benchmarks.flops import module_flops  # noqa: E402
from benchmarks.modes import BASELINE_MODES, KERAS_MODES, TORCH_MODES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("inference", "training", "pipeline")
TORCHVISION_SIZE = 224
TORCHVISION_LABEL = "torchvision.models.alexnet"  # the outside baseline, not our variant


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_modes(variant, modes, models, flops, params, shape, batches, budget) -> list[dict]:
    """Time each mode at each batch size; peak memory is taken around each batch's whole run."""
    from parity.randomize import random_batch

    rows = []
    for mode in modes:
        for batch in batches:
            x = random_batch((batch, *shape), seed=batch)
            paired = batch == max(batches)
            if paired:  # each call paired with an sgemm right after it: the load here drifts
                sgemm, sgemm_flops = machine.sgemm()
                sgemm()  # its memory is touched before the peak is taken
            with machine.peak_memory() as mem:
                call = mode.prepare(models[mode.framework], x)
                t = timing.paired_seconds(call, sgemm, budget) if paired else timing.seconds_per_call(call, budget)
                del call
            if paired:
                del sgemm
            images_per_s = batch / t["median"]
            row = {
                "variant": variant, "framework": mode.framework, "mode": mode.name, "default": mode.default,
                "batch": batch, "seconds": t["median"], "best_seconds": t["best"], "reps": t["reps"],
                "images_per_s": images_per_s, "gflops": images_per_s * flops / 1e9,
                "weight_gbps": params * 4 / t["median"] / 1e9,
                "peak_mib": mem["mib"], "local_sgemm_gflops": None,
            }
            if "ratios" in t:
                # GFLOP/s of the model over GFLOP/s of the sgemm after it, pair by pair
                shares = [batch * flops / sgemm_flops * ratio for ratio in t["ratios"]]
                row["sgemm_share"] = statistics.median(shares)
                row["local_sgemm_gflops"] = row["gflops"] / row["sgemm_share"]  # implied, not measured
            rows.append(row)
            print(f"  {variant:12s} {mode.framework:11s} {mode.name:14s} batch {batch:3d}: "
                  f"{images_per_s:8.1f} img/s", flush=True)
    return rows


def bench_variant(variant: str, batches, budget, *, check: bool) -> tuple[list[dict], dict]:
    import alexnet_torch
    from parity import keras_to_torch, randomize_torch, torch_to_keras
    from alexnet_spec import get_spec

    spec = get_spec(variant)
    module = randomize_torch(alexnet_torch.build(variant), seed=0).eval()
    shape = spec.input_shape_nchw
    flops = module_flops(module, shape)
    params = sum(p.numel() for p in module.parameters())
    seconds = {}
    start = time.perf_counter()
    keras_model = torch_to_keras(module)
    seconds["port torch->keras"] = time.perf_counter() - start
    start = time.perf_counter()
    keras_to_torch(keras_model)
    seconds["port keras->torch"] = time.perf_counter() - start
    models = {"torch": module, "keras": keras_model}
    rows = measure_modes(variant, TORCH_MODES + KERAS_MODES, models, flops, params, shape, batches, budget)
    if check:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "parity", "check", "--variant", variant],
                              cwd=ROOT, capture_output=True, text=True)
        seconds["alexnet-parity check"] = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"alexnet-parity check --variant {variant} failed:\n{done.stdout}{done.stderr}")
    info = {"gflop_per_image": flops / 1e9, "params": params, "input_size": spec.input_size, "seconds": seconds}
    return rows, info


def bench_torchvision(batches, budget) -> tuple[list[dict], dict]:
    """torchvision's own AlexNet, the outside baseline, in the same torch modes."""
    module = torchvision.models.alexnet(weights=None).eval()
    shape = (3, TORCHVISION_SIZE, TORCHVISION_SIZE)
    flops = module_flops(module, shape)
    params = sum(p.numel() for p in module.parameters())
    rows = measure_modes(TORCHVISION_LABEL, BASELINE_MODES, {"torch": module}, flops, params, shape, batches, budget)
    return rows, {"gflop_per_image": flops / 1e9, "params": params, "input_size": TORCHVISION_SIZE}


def run(variants, *, batches=(1, 32), budget=timing.FULL, check=True, sgemm_reps=5) -> dict:
    import keras

    sgemm = [machine.sgemm_gflops(sgemm_reps)]
    copy = machine.copy_gbps(sgemm_reps)
    print(f"sgemm {sgemm[0]:.0f} GFLOP/s, copy {copy:.1f} GB/s", flush=True)
    rows, infos = [], {}
    for variant in variants:
        r, info = bench_variant(variant, batches, budget, check=check)
        rows += r
        infos[variant] = info
    r, info = bench_torchvision(batches, budget)
    rows += r
    infos[TORCHVISION_LABEL] = info
    sgemm.append(machine.sgemm_gflops(sgemm_reps))  # again at the end: the machine drifts
    peak = max(sgemm)
    for r in rows:
        r.setdefault("sgemm_share", r["gflops"] / peak)  # batch 1: against the run's best sgemm
        r["copy_share"] = r["weight_gbps"] / copy
    return {
        "machine": {
            "cpu": _cpu_name(), "threads": torch.get_num_threads(), "sgemm_gflops": peak,
            "sgemm_runs": sgemm, "copy_gbps": copy, "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "keras": keras.__version__, "keras_backend": keras.backend.backend(),
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        },
        "batches": list(batches),
        "rows": rows,
        "variants": infos,
    }


def main(argv=None) -> int:
    import json

    import alexnet_torch
    from benchmarks import report

    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="a variant (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (two or three minutes)")
    parser.add_argument("--no-check", action="store_true", help="skip timing alexnet-parity check")
    parser.add_argument("--out", default=str(ROOT / "docs" / "assets"), help="folder for NAME.json and NAME.png")
    parser.add_argument("--name", default="benchmarks", help="file name stem (default: benchmarks)")
    parser.add_argument("--before", metavar="JSON", help="an earlier run to draw beside this one")
    parser.add_argument("--force", action="store_true", help="overwrite NAME.json / NAME.png")
    parser.add_argument("--only", choices=SECTIONS,
                        help="run one section (default: all); only inference writes a chart")
    args = parser.parse_args(argv)
    sections = SECTIONS if args.only is None else (args.only,)

    variants = tuple(args.variant or alexnet_torch.VARIANTS)
    out = Path(args.out)
    targets = [out / f"{args.name}.json"] + ([out / f"{args.name}.png"] if "inference" in sections else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        print(f"benchmarks: {', '.join(existing)} exist; pass --force to replace them or --name to "
              "write others", file=sys.stderr)
        return 2
    budget = timing.QUICK if args.quick else timing.FULL
    if "inference" in sections:
        results = run(variants, budget=budget, check=not args.no_check, sgemm_reps=3 if args.quick else 5)
        print(report.table(results))
    else:
        results = {"machine": _machine(machine.sgemm_gflops(3 if args.quick else 5))}
    if "training" in sections:
        results["training"] = run_training(variants, quick=args.quick)
    if "pipeline" in sections:
        results["pipeline"] = run_pipeline(quick=args.quick)
    results["quick"] = args.quick
    report.write_json(results, targets[0], overwrite=args.force)
    if "inference" in sections:
        before = json.loads(Path(args.before).read_text()) if args.before else None
        report.write_chart(results, targets[1], before=before, overwrite=args.force)
    print(f"wrote {' and '.join(map(str, targets))}")
    return 0


def run_training(variants, *, quick: bool) -> dict:
    """The training section: one step per call for the variants that have a training recipe here,
    what the finite-loss guard costs, then one whole epoch of each framework's training loop (when
    cifar is among the variants)."""
    from benchmarks.training import (BUDGET, EPOCH_ROUNDS, EPOCH_VARIANT, QUICK, QUICK_EPOCH_ROUNDS, TRAINING_BATCH,
                                     TRAINING_VARIANTS, epoch_table, guard_table, measure_epochs, measure_guard,
                                     measure_training, training_table)

    chosen = tuple(v for v in TRAINING_VARIANTS if v in variants)
    rows = measure_training(chosen, budget=QUICK if quick else BUDGET)
    print(training_table(rows))
    guard = measure_guard(chosen[:1], budget=QUICK if quick else BUDGET)
    print(guard_table(guard))
    section = {"batch": TRAINING_BATCH, "step_flops": "3x forward", "rows": rows, "guard": guard}
    if EPOCH_VARIANT in variants:
        section["epoch"] = measure_epochs(QUICK_EPOCH_ROUNDS if quick else EPOCH_ROUNDS)
        print(epoch_table(section["epoch"]))
    return section


def run_pipeline(*, quick: bool) -> dict:
    """The pipeline section: images/s per worker of each ImageNet recipe's training transform."""
    from benchmarks.pipeline import QUICK_REPS, REPS, SAMPLE_IMAGES, measure_pipelines, pipeline_table

    rows = measure_pipelines(reps=QUICK_REPS if quick else REPS)
    print(pipeline_table(rows))
    return {"images": SAMPLE_IMAGES, "rows": rows}


def _machine(sgemm_gflops: float) -> dict:
    import keras

    return {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "sgemm_gflops": sgemm_gflops,
            "python": platform.python_version(), "torch": torch.__version__, "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


if __name__ == "__main__":
    sys.exit(main())
