"""Training throughput: one optimizer step (forward, backward, SGD update) per timed call, in each
framework's own training code, paired with an sgemm like the inference rows.

A step is counted as 3x the forward FLOPs (the forward pass, and a backward pass that computes the
gradients of both the activations and the weights, each as costly as the forward). The PyTorch
step is ``alexnet_torch.training.train_one_epoch`` over one batch (cross-entropy, ``backward``,
``DecoupledSGD.step``: Keras's decoupled weight decay, then SGD's step); the Keras step is
``model.train_on_batch`` on the model ``alexnet_keras.training.compile_for_training`` compiled,
the function ``model.fit`` runs each batch. Both models are built as ``alexnet-train`` builds them, with the variant's recipe.

The guard rows (:func:`measure_guard`) time what the finite-loss guard costs: a few steps of each
framework's loop with the guard and without it, paired call by call, reported as the ratio of the
two times (PyTorch: ``train_one_epoch(guard=...)``, one ``math.isfinite`` a step; Keras: ``fit``
with and without ``alexnet_keras.training.FiniteLoss``, which reads the loss after every batch),
and the once-an-epoch check of every weight before the checkpoint (``nonfinite_weights``).

The epoch rows (:func:`measure_epochs`) time one whole epoch of each framework's shipped training
loop on the same batches (the cifar network on the digits, precise BN and evaluation included),
the frameworks alternating, and break it into its parts: the data, the steps, precise BN,
evaluation, and the loop's own cost.
"""

from __future__ import annotations

import statistics
import time

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


def _torch_model(variant: str):
    import torch

    import alexnet_torch
    from alexnet_torch.training import sgd
    from alexnet_training import runs

    recipe = _recipe(variant)
    torch.manual_seed(0)
    model = alexnet_torch.build(variant, **runs.model_options(variant, recipe.init))
    return model, sgd(model, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def _keras_model(variant: str):
    import keras

    import alexnet_keras
    from alexnet_keras.training import compile_for_training
    from alexnet_training import runs

    recipe = _recipe(variant)
    keras.utils.set_random_seed(0)
    return compile_for_training(alexnet_keras.build(variant, **runs.model_options(variant, recipe.init)), recipe)


def torch_step(variant: str, x_nchw: np.ndarray, y: np.ndarray):
    """A zero-argument call: one training step of a freshly built torch ``variant``."""
    import torch

    from alexnet_torch.training import train_one_epoch

    model, optimizer = _torch_model(variant)
    batch = [(torch.from_numpy(np.ascontiguousarray(x_nchw)), torch.from_numpy(y).long())]
    return lambda: train_one_epoch(model, optimizer, batch)


def keras_step(variant: str, x_nchw: np.ndarray, y: np.ndarray):
    """A zero-argument call: one ``train_on_batch`` of a freshly built Keras ``variant``."""
    model = _keras_model(variant)
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    return lambda: model.train_on_batch(x, y)


STEPS = {"torch": ("SGD step", torch_step), "keras": ("train_on_batch", keras_step)}
GUARD_STEPS = 4  # batches per timed call of the guard rows


def torch_loops(variant: str, x_nchw: np.ndarray, y: np.ndarray, steps: int = GUARD_STEPS):
    """Three zero-argument calls on one model: ``train_one_epoch`` over ``steps`` batches with the
    guard, the same without it, and the epoch's check of the weights."""
    import torch

    from alexnet_torch.training import nonfinite_weights, train_one_epoch

    model, optimizer = _torch_model(variant)
    batches = [(torch.from_numpy(np.ascontiguousarray(x_nchw)), torch.from_numpy(y).long())] * steps
    return (lambda: train_one_epoch(model, optimizer, batches),
            lambda: train_one_epoch(model, optimizer, batches, guard=False),
            lambda: nonfinite_weights(model))


def keras_fits(variant: str, x_nchw: np.ndarray, y: np.ndarray, steps: int = GUARD_STEPS):
    """Three zero-argument calls on one model: ``fit`` for one epoch of ``steps`` batches with
    ``FiniteLoss``, the same without it, and the epoch's check of the weights."""
    from alexnet_keras.training import FiniteLoss, nonfinite_weights

    model = _keras_model(variant)
    x = np.concatenate([x_nchw.transpose(0, 2, 3, 1)] * steps)
    ys = np.concatenate([y] * steps)

    def fit(callbacks):
        return model.fit(x, ys, batch_size=len(y), epochs=1, shuffle=False, verbose=0, callbacks=callbacks)

    return lambda: fit([FiniteLoss()]), lambda: fit([]), lambda: nonfinite_weights(model)


GUARDS = {"torch": ("train_one_epoch", torch_loops), "keras": ("fit", keras_fits)}


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


def measure_guard(variants=("cifar",), frameworks=("torch", "keras"), *, batch: int = TRAINING_BATCH,
                  steps: int = GUARD_STEPS, budget: timing.Budget = BUDGET) -> list[dict]:
    """One row per variant and framework: seconds of ``steps`` training steps with the finite-loss
    guard and without, paired call by call (``ratio``: the median of the pairs' with/without), and
    seconds of the weight check each epoch ends with."""
    rows = []
    for variant in variants:
        x, y = _batch(variant, batch)
        for framework in frameworks:
            loop, prepare = GUARDS[framework]
            guarded, plain, check = prepare(variant, x, y, steps)
            t = timing.paired_seconds(guarded, plain, budget)  # ratios: plain / guarded, per pair
            ratio = statistics.median(1 / r for r in t["ratios"])
            rows.append({"variant": variant, "framework": framework, "loop": loop, "batch": batch, "steps": steps,
                         "guarded_seconds": t["median"], "reps": t["reps"], "ratio": ratio,
                         "weights_check_seconds": timing.seconds_per_call(check, budget)["median"]})
            print(f"  {variant:12s} {framework:6s} {loop:15s} {steps} steps: guarded/plain {ratio:.3f}", flush=True)
    return rows


def guard_table(rows: list[dict]) -> str:
    head = ["variant", "framework", "loop", "batch", "steps", "s guarded", "guarded/plain", "s weights check"]
    body = [[r["variant"], r["framework"], r["loop"], str(r["batch"]), str(r["steps"]), f"{r['guarded_seconds']:.3f}",
             f"{r['ratio']:.3f}", f"{r['weights_check_seconds']:.3f}"] for r in rows]
    lines = format_table(head, body, right=range(3, len(head)))
    lines.append("Finite-loss guard: the loop's time with the guard over its time without, the median of calls "
                 "paired one after the other (1.000: it costs nothing measurable); the check of every weight "
                 "runs once an epoch, before the checkpoint.")
    return "\n".join(lines)


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


__all__ = ["EPOCH_GOAL", "EPOCH_VARIANT", "GUARD_STEPS", "STEP_FLOPS", "TRAINING_BATCH", "TRAINING_VARIANTS",
           "epoch_setup", "epoch_table", "guard_table", "keras_epochs", "keras_fits", "keras_step", "measure_epochs",
           "measure_guard", "measure_training", "torch_epochs", "torch_loops", "torch_step", "training_table"]
