"""Training throughput: one optimizer step (forward, backward, SGD update) per timed call, in each
framework's own training code, paired with an sgemm like the inference rows.

A step is counted as 3x the forward FLOPs (the forward pass, and a backward pass that computes the
gradients of both the activations and the weights, each as costly as the forward). The PyTorch
step is ``alexnet_torch.training.train_one_epoch`` over one batch (cross-entropy, ``backward``,
``DecoupledSGD.step``: Keras's decoupled weight decay, then SGD's step); the Keras step is
``model.train_on_batch`` on the model ``alexnet_keras.training.compile_for_training`` compiled,
the function ``model.fit`` runs each batch. Both models are built as ``alexnet-train`` builds them, with the variant's recipe.
"""

from __future__ import annotations

import statistics

import numpy as np

from alexnet_spec.text import format_table
from benchmarks import machine, timing

TRAINING_VARIANTS = ("cifar", "paper")
TRAINING_BATCH = 32
STEP_FLOPS = 3  # forward FLOPs per image a training step costs
BUDGET = timing.Budget(warmup=1, min_reps=3, min_seconds=2.0, max_seconds=20.0)
QUICK = timing.Budget(warmup=1, min_reps=2, min_seconds=0.0, max_seconds=6.0)


def _recipe(variant: str):
    from alexnet_training.recipes import RECIPES, get_recipe

    return get_recipe(variant if variant in RECIPES else "cifar")


def _batch(variant: str, batch: int):
    from alexnet_spec import get_spec
    from parity.randomize import random_batch

    spec = get_spec(variant)
    x = random_batch((batch, *spec.input_shape_nchw), seed=batch)
    y = np.random.default_rng(batch).integers(0, spec.num_classes, size=batch)
    return x, y


def torch_step(variant: str, x_nchw: np.ndarray, y: np.ndarray):
    """A zero-argument call: one training step of a freshly built torch ``variant``."""
    import torch

    import alexnet_torch
    from alexnet_training import runs
    from alexnet_torch.training import sgd, train_one_epoch

    recipe = _recipe(variant)
    torch.manual_seed(0)
    model = alexnet_torch.build(variant, **runs.model_options(variant, recipe.init))
    optimizer = sgd(model, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    batch = [(torch.from_numpy(np.ascontiguousarray(x_nchw)), torch.from_numpy(y).long())]
    return lambda: train_one_epoch(model, optimizer, batch)


def keras_step(variant: str, x_nchw: np.ndarray, y: np.ndarray):
    """A zero-argument call: one ``train_on_batch`` of a freshly built Keras ``variant``."""
    import keras

    import alexnet_keras
    from alexnet_keras.training import compile_for_training
    from alexnet_training import runs

    recipe = _recipe(variant)
    keras.utils.set_random_seed(0)
    model = compile_for_training(alexnet_keras.build(variant, **runs.model_options(variant, recipe.init)), recipe)
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    return lambda: model.train_on_batch(x, y)


STEPS = {"torch": ("SGD step", torch_step), "keras": ("train_on_batch", keras_step)}


def measure_training(variants=TRAINING_VARIANTS, frameworks=("torch", "keras"), *, batch: int = TRAINING_BATCH,
                     budget: timing.Budget = BUDGET, sgemm_n: int = machine.SGEMM_N) -> list[dict]:
    """One row per variant and framework: images/s of a training step and its paired share of sgemm."""
    from alexnet_spec import get_spec
    from benchmarks.flops import spec_flops

    rows = []
    for variant in variants:
        flops = spec_flops(get_spec(variant))
        x, y = _batch(variant, batch)
        for framework in frameworks:
            mode, prepare = STEPS[framework]
            sgemm, sgemm_flops = machine.sgemm(sgemm_n)
            sgemm()
            with machine.peak_memory() as mem:
                step = prepare(variant, x, y)
                t = timing.paired_seconds(step, sgemm, budget)
                del step
            images_per_s = batch / t["median"]
            shares = [batch * STEP_FLOPS * flops / sgemm_flops * ratio for ratio in t["ratios"]]
            rows.append({
                "variant": variant, "framework": framework, "mode": mode, "batch": batch,
                "seconds": t["median"], "best_seconds": t["best"], "reps": t["reps"],
                "images_per_s": images_per_s, "step_gflop_per_image": STEP_FLOPS * flops / 1e9,
                "gflops": images_per_s * STEP_FLOPS * flops / 1e9, "sgemm_share": statistics.median(shares),
                "peak_mib": mem["mib"],
            })
            print(f"  {variant:12s} {framework:6s} {mode:15s} batch {batch:3d}: {images_per_s:8.1f} img/s "
                  f"(training)", flush=True)
    return rows


def training_table(rows: list[dict]) -> str:
    head = ["variant", "framework", "step", "batch", "s/step", "img/s", "GFLOP/s (3x fwd)", "share of sgemm",
            "peak MiB"]
    body = [[r["variant"], r["framework"], r["mode"], str(r["batch"]), f"{r['seconds']:.3f}",
             f"{r['images_per_s']:.1f}", f"{r['gflops']:.0f}", f"{r['sgemm_share']:.2f}",
             "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"] for r in rows]
    lines = format_table(head, body, right=range(3, len(head)))
    lines.append("Training: one optimizer step per call (forward, backward, SGD update), counted as 3x the forward "
                 "FLOPs; share of sgemm: the median over steps of each step's GFLOP/s over that of an sgemm run "
                 "right after it.")
    return "\n".join(lines)


__all__ = ["STEP_FLOPS", "TRAINING_BATCH", "TRAINING_VARIANTS", "keras_step", "measure_training", "torch_step",
           "training_table"]
