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


# --- one whole epoch through the shipped loops -----------------------------------------------------

EPOCH_VARIANT = "cifar"  # the network the epoch times were taken on (make demo)
EPOCH_ROUNDS, QUICK_EPOCH_ROUNDS = 3, 1  # a median of three rides out one round the load disturbs
EPOCH_GOAL = 1.3  # issue 20: a Keras epoch at most 1.3x the torch epoch on the same batches
PARTS = ("data", "steps", "precise_bn", "evaluation")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def epoch_setup(epochs: int = 2, *, batch: int = TRAINING_BATCH, limit: int | None = None):
    """``(recipe, config, train_pipe, val_pipe)``: the cifar recipe on scikit-learn's digits as
    ``alexnet-train --variant cifar --data digits --dropout 0`` runs it (precise BN as the recipe
    says), ``limit`` images of each split when given (tests)."""
    from alexnet_training import runs
    from alexnet_training.augment import Pipeline
    from alexnet_training.data import load_digits, subset

    recipe = _recipe(EPOCH_VARIANT)
    train, val = load_digits()
    if limit:
        train, val = subset(train, limit), subset(val, limit)
    config = runs.RunConfig(framework="", variant=EPOCH_VARIANT, recipe=recipe.name, data="digits", epochs=epochs,
                            batch_size=batch, seed=0, num_classes=len(train.classes),
                            options=runs.model_options(EPOCH_VARIANT, recipe.init, 0.0), lr=recipe.lr,
                            precise_bn=recipe.precise_bn)
    return (recipe, config, Pipeline(train, recipe.augment, train=True, seed=0, batch_size=batch),
            Pipeline(val, recipe.augment, train=False, seed=0, batch_size=batch))


def torch_epochs(recipe, config, train_pipe, val_pipe, run_dir) -> dict:
    """``alexnet_torch.training.train`` for ``config.epochs`` epochs (its own clock per epoch), then
    each part of an epoch alone on the trained model: the DataLoader's batches, the steps over them,
    precise BN, evaluation."""
    import dataclasses

    import torch

    import alexnet_torch
    from alexnet_torch.training import data_loader, evaluate, sgd, train, train_one_epoch, update_bn_stats
    from alexnet_training.precise_bn import precise_bn_batches

    torch.manual_seed(config.seed)
    model = alexnet_torch.build(config.variant, config.num_classes, **config.options)
    rows = train(model, recipe, train_pipe, val_pipe, run_dir, dataclasses.replace(config, framework="torch"),
                 progress=False)
    optimizer = sgd(model, lr=config.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    parts, batches = {}, []
    parts["data"] = _seconds(lambda: batches.extend(data_loader(train_pipe)))
    train_one_epoch(model, optimizer, batches[:1])  # one step first, as Keras's (whose first call traces)
    parts["steps"] = _seconds(lambda: train_one_epoch(model, optimizer, batches))
    parts["precise_bn"] = _seconds(lambda: update_bn_stats(model, precise_bn_batches(train_pipe, 0, config.precise_bn)))
    parts["evaluation"] = _seconds(lambda: evaluate(model, data_loader(val_pipe)))
    return {"epochs": [r["seconds"] for r in rows], "parts": parts}


def keras_epochs(recipe, config, train_pipe, val_pipe, run_dir) -> dict:
    """``alexnet_keras.training.train`` (``model.fit``) for ``config.epochs`` epochs (its own clock
    per epoch), then each part of an epoch alone on the trained model: the PyDataset's batches,
    ``train_on_batch`` over them (the step ``fit`` runs), precise BN, ``evaluate`` (what ``fit``
    validates with)."""
    import dataclasses

    import keras

    import alexnet_keras
    from alexnet_keras.training import BatchSequence, train, update_bn_stats
    from alexnet_training.precise_bn import precise_bn_batches

    keras.utils.set_random_seed(config.seed)
    model = alexnet_keras.build(config.variant, config.num_classes, **config.options)
    rows = train(model, recipe, train_pipe, val_pipe, run_dir, dataclasses.replace(config, framework="keras"),
                 progress=False)
    sequence, parts, batches = BatchSequence(train_pipe), {}, []
    parts["data"] = _seconds(lambda: batches.extend(sequence[n] for n in range(len(sequence))))
    model.train_on_batch(*batches[0])  # traces train_on_batch's own step function (fit's is another)
    parts["steps"] = _seconds(lambda: [model.train_on_batch(x, y) for x, y in batches])
    parts["precise_bn"] = _seconds(lambda: update_bn_stats(model, precise_bn_batches(train_pipe, 0, config.precise_bn)))
    parts["evaluation"] = _seconds(lambda: model.evaluate(BatchSequence(val_pipe), verbose=0))
    return {"epochs": [r["seconds"] for r in rows], "parts": parts}


EPOCHS = {"torch": torch_epochs, "keras": keras_epochs}


def measure_epochs(rounds: int = EPOCH_ROUNDS, *, epochs: int = 2, batch: int = TRAINING_BATCH,
                   limit: int | None = None) -> dict:
    """Torch and Keras trained on the same batches, alternating, ``rounds`` times in this process
    (the load drifts): per framework the first and the last epoch of each run and the parts of an
    epoch; the Keras/torch ratio of the last epochs, round by round, and its median."""
    import tempfile

    from alexnet_training.precise_bn import precise_bn_batches

    recipe, config, train_pipe, val_pipe = epoch_setup(epochs, batch=batch, limit=limit)
    timed = {framework: [] for framework in EPOCHS}
    for _ in range(rounds):
        for framework, measure in EPOCHS.items():
            with tempfile.TemporaryDirectory(prefix=f"epoch-{framework}-") as run_dir:
                timed[framework].append(measure(recipe, config, train_pipe, val_pipe, run_dir))
            last = timed[framework][-1]
            print(f"  {EPOCH_VARIANT} {framework:6s} epochs {', '.join(f'{s:.2f}' for s in last['epochs'])} s "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in last['parts'].items())})", flush=True)
    ratios = [k["epochs"][-1] / t["epochs"][-1] for t, k in zip(timed["torch"], timed["keras"])]
    rows = []
    for framework, measured in timed.items():
        row = {"framework": framework, "variant": EPOCH_VARIANT, "batch": batch, "batches": train_pipe.num_batches,
               "first_epoch": statistics.median(m["epochs"][0] for m in measured),
               "epoch": statistics.median(m["epochs"][-1] for m in measured),
               **{part: statistics.median(m["parts"][part] for m in measured) for part in PARTS}}
        row["other"] = row["epoch"] - sum(row[part] for part in PARTS)
        rows.append(row)
    return {"rows": rows, "ratios": ratios, "ratio": statistics.median(ratios), "goal": EPOCH_GOAL,
            "train_images": len(train_pipe), "val_images": len(val_pipe),
            "precise_bn_images": sum(len(x) for x in precise_bn_batches(train_pipe, 0, config.precise_bn)),
            "epochs": epochs, "rounds": rounds}


def epoch_table(result: dict) -> str:
    head = ["framework", "first epoch s", "epoch s", "data s", "steps s", "precise BN s", "evaluation s", "other s"]
    body = [[r["framework"], f"{r['first_epoch']:.2f}", f"{r['epoch']:.2f}",
             *(f"{r[part]:.2f}" for part in PARTS), f"{r['other']:.2f}"] for r in result["rows"]]
    lines = format_table(head, body, right=range(1, len(head)))
    ratio, goal = result["ratio"], result["goal"]
    lines.append(f"Epoch: {EPOCH_VARIANT} on digits, {result['train_images']} training images in batches of "
                 f"{result['rows'][0]['batch']} and {result['val_images']} test images, dropout 0, precise BN over "
                 f"{result['precise_bn_images']} samples, each framework's own train() (epoch s: the last of "
                 f"{result['epochs']}, its own clock); the parts timed alone on the trained model; other: the "
                 f"loop's own cost (epoch s less the parts). Keras/torch epoch {ratio:.2f} (goal <= {goal}; "
                 f"{'met' if ratio <= goal else 'not met'}), median of {result['rounds']} alternated "
                 f"round{'s' if result['rounds'] > 1 else ''}: {', '.join(f'{r:.2f}' for r in result['ratios'])}.")
    return "\n".join(lines)


__all__ = ["EPOCH_GOAL", "EPOCH_VARIANT", "GUARD_STEPS", "STEP_FLOPS", "TRAINING_BATCH", "TRAINING_VARIANTS",
           "epoch_setup", "epoch_table", "guard_table", "keras_epochs", "keras_fits", "keras_step", "measure_epochs",
           "measure_guard", "measure_training", "torch_epochs", "torch_loops", "torch_step", "training_table"]
