"""Training-mode parity: the PyTorch and the Keras network are the same *trainable* network.

Inference parity says two models compute the same function; it says nothing about what training
does to them. Here a seeded random torch model is ported to Keras, both are put in training mode
with dropout off, and:

1. a forward pass with batch statistics is compared layer by layer (``parity.compare``);
2. each framework takes ``steps`` optimizer steps on the same batch with the code users train with
   (``alexnet_torch.training.train_step`` with ``alexnet_torch.training.sgd``'s ``DecoupledSGD``,
   the step ``train_one_epoch`` takes; ``keras.Model.train_on_batch`` on the model
   ``alexnet_keras.training.compile_for_training`` compiled), and the updated weights and BatchNorm
   moving statistics are compared. The float64 run goes through the same torch step.

Conventions carried so the two updates are the same:

- Loss: cross-entropy, on logits when the model returns logits (``logits=True``), else
  ``-mean(log p[label])`` on the softmax probabilities, written out the same way in both
  (``train_step(probabilities=True)``, ``compile_for_training(probabilities=True)``; Keras's own
  probability loss clips and may recover the logits, a different computation).
- SGD with momentum: Keras keeps ``v = momentum * v - lr * g; w += v``, PyTorch
  ``b = momentum * b + g; w -= lr * b``; with no dampening these are the same update.
- Weight decay: Keras's ``weight_decay`` is decoupled (``w -= lr * wd * w`` before the gradient
  step, outside the momentum); PyTorch's SGD ``weight_decay`` adds ``wd * w`` to the gradient, so
  it runs through the momentum. The first step is identical either way, later steps are not. The
  torch side therefore trains with ``alexnet_torch.optim.DecoupledSGD``, which applies Keras's
  decoupled decay to every trainable parameter before SGD's step (``torch_weight_decay="coupled"``
  hands the same ``train_step`` PyTorch's own ``torch.optim.SGD(weight_decay=...)`` instead, to
  show that the check tells the two apart).
- BatchNorm: momentum and the biased running variance are carried by the torch model itself
  (``alexnet_torch.batchnorm``).

One step cannot see the momentum or the weight-decay coupling (both start from zero velocity), so
the default is two steps; every step is compared.

Errors are measured against a float64 torch run of the same step (same weights, batch, labels):
the weights' change in the step (after - before) is compared relative to the largest float64
change of the layer's weights, which is far more sensitive than comparing the weights themselves
(a step moves them by a small fraction), with an allowance of ``ULPS`` fp32 spacings for storing
the result. Every step starts all three models from the same weights (the float64 model's, rounded
to float32; see ``_synchronize``), so each step is judged on its own and rounding cannot compound.
The tolerances ``STEP_RTOL`` and ``TRAIN_RTOL`` are set from float64 runs: see their comments.

Limit: a pre-activation within fp32 rounding of a ReLU's kink takes the other branch in fp32 than
in float64, and the gradients of every layer below it then legitimately differ. Measured on the
``paper`` variant (seed 0, batch 2): one conv4 value at -4.1e-6 on a scale of 12.8 flips sign in
PyTorch's fp32 run, which moves conv1-conv4's updates 1.5e-3 of their change away from float64
(Keras: 4e-6) and fails the check with no convention wrong. A wrong convention fails at every seed;
a kink fails at one: rerun with another ``seed`` or ``batch`` to tell them apart.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from alexnet_spec.text import format_table
from parity.compare import ParityReport, compare

# Measured on cifar (batch 8, lr 0.01, momentum 0.9, wd 5e-4, 2 steps, seeds 0-2), as a fraction of
# each layer's largest float64 change in one step: each framework's fp32 step against the float64
# step reaches 2.5e-5 for kernels and 1.2e-5 for moving statistics; gamma/beta land within one
# fp32 spacing of float64, which is 2-3e-4 of their small change (covered by ULPS). Conventions
# cost far more: PyTorch's BatchNorm momentum 0.1 moves the statistics 0.9 of their change off, its
# unbiased running variance 0.2 (fc layers, batch 8), PyTorch's coupled SGD weight decay 1.2e-2 at
# step 2. STEP_RTOL sits 8x above the rounding and 60x below the smallest convention error.
STEP_RTOL = 2e-4
ULPS = 2  # plus this many fp32 spacings of the tensor's largest value: each side stores rounded
# A forward pass with batch statistics subtracts a batch mean over as few as 8 values (fc layers),
# which loses digits: each framework's fp32 error against float64 reaches 2.1e-5 there (inference:
# 2e-6). A wrong BatchNorm epsilon moves these outputs by far more (measured in the tests).
TRAIN_RTOL = 1e-4

DEFAULT_LEARNING_RATE = 0.01
DEFAULT_MOMENTUM = 0.9
DEFAULT_WEIGHT_DECAY = 5e-4


@dataclass
class StepRow:
    step: int
    layer: str  # Keras layer name
    weights: str  # which of its weights, in Keras's names
    torch_keys: tuple[str, ...]
    max_abs: float  # torch fp32 vs Keras fp32
    max_rel: float  # ... relative to the largest float64 change of these tensors
    torch_vs_f64: float
    keras_vs_f64: float
    allowed: float = math.inf  # max abs allowed: step_rtol of the change plus ULPS fp32 spacings
    ok: bool = True


@dataclass
class TrainReport:
    variant: str
    forward: ParityReport
    steps: list[StepRow]
    losses: list[dict]  # per step: torch, keras, float64
    step_rtol: float
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.forward.ok and all(r.ok for r in self.steps)

    def verdict(self) -> str:
        n = len(self.losses)
        if self.ok:
            worst = max(self.steps, key=lambda r: r.max_abs / r.allowed)
            return (
                f"PASS: {self.variant} training: forward in training mode agrees "
                f"(output max rel {self.forward.output.max_rel:.2e}); after {n} SGD step(s) every weight "
                f"and moving statistic agrees (closest to its limit: {worst.layer} {worst.weights}, step "
                f"{worst.step}, max abs {worst.max_abs:.2e} of {worst.allowed:.2e} allowed: "
                f"{self.step_rtol:.0e} of the change + {ULPS} fp32 spacings)"
            )
        if not self.forward.ok:
            return f"FAIL: {self.variant} training forward: " + self.forward.verdict().removeprefix("FAIL: ")
        bad = next(r for r in self.steps if not r.ok)
        return (
            f"FAIL: {self.variant} training: after step {bad.step}, {bad.layer} {bad.weights} (torch "
            f"{', '.join(bad.torch_keys)}) differ by {bad.max_rel:.3e} of their change (max abs "
            f"{bad.max_abs:.2e}, allowed {bad.allowed:.2e}); torch vs float64 {bad.torch_vs_f64:.2e}, keras vs float64 "
            f"{bad.keras_vs_f64:.2e}: the framework far from float64 has the wrong convention"
        )

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "ok": self.ok,
            "verdict": self.verdict(),
            "settings": self.settings,
            "step_rtol": self.step_rtol,
            "losses": self.losses,
            "forward": self.forward.to_dict(),
            "steps": [asdict(r) for r in self.steps],
            "notes": self.notes,
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        head = ["step", "layer", "weights", "max abs", "allowed", "rel change", "torch-f64", "keras-f64", ""]
        body = [
            [str(r.step), r.layer, r.weights, f"{r.max_abs:.2e}", f"{r.allowed:.2e}", f"{r.max_rel:.2e}",
             f"{r.torch_vs_f64:.2e}", f"{r.keras_vs_f64:.2e}", "ok" if r.ok else "FAIL"]
            for r in self.steps
        ]
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        losses = "; ".join(
            f"step {i + 1}: torch {d['torch']:.6f}, keras {d['keras']:.6f}, float64 {d['float64']:.6f}"
            for i, d in enumerate(self.losses)
        )
        lines = [f"training forward pass ({settings}):", str(self.forward), "", f"losses: {losses}",
                 *format_table(head, body), *self.notes, self.verdict()]
        return "\n".join(lines)


def check_train_step(
    variant: str = "cifar",
    *,
    seed: int = 0,
    batch: int = 8,
    steps: int = 2,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    momentum: float = DEFAULT_MOMENTUM,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    options: dict | None = None,
    module=None,
    rtol: float = TRAIN_RTOL,
    step_rtol: float = STEP_RTOL,
    torch_weight_decay: str = "decoupled",
) -> TrainReport:
    """Train a seeded random ``variant`` (or ``module``, a torch model with dropout 0) for ``steps``
    SGD steps in both frameworks from the same weights and batch; compare forward and weights."""
    import torch

    import alexnet_torch
    from alexnet_spec import get_spec
    from alexnet_spec.tables import get_table
    from parity.models import torch_to_keras
    from parity.randomize import random_batch, randomize_torch

    if torch_weight_decay not in ("decoupled", "coupled"):
        raise ValueError(f"torch_weight_decay must be 'decoupled' (Keras's) or 'coupled'; found {torch_weight_decay!r}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; found {steps}")
    if batch < 2:
        raise ValueError(f"batch must be at least 2: BatchNorm cannot train on batch statistics of one sample; found {batch}")
    if module is None:
        module = randomize_torch(alexnet_torch.build(variant, dropout=0.0, **(options or {})), seed)
    else:
        variant = getattr(module, "variant", variant)
        active = [name for name, m in module.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
        if active:
            raise ValueError(
                f"training parity needs dropout switched off, or the two frameworks drop different "
                f"units; {', '.join(active)} have p > 0. Build the model with dropout=0.0."
            )
    spec, table = get_spec(variant), get_table(variant)
    probabilities = spec.softmax and not getattr(module, "options", {}).get("logits", False)
    x = random_batch((batch, *spec.input_shape_nchw), seed + 1)
    num_classes = int(module.state_dict()[table.output.torch_keys()[1]].shape[0])
    y = np.random.default_rng(seed + 2).integers(0, num_classes, size=batch)

    keras_model = torch_to_keras(module, dropout=0.0)
    forward = compare(copy.deepcopy(module), keras_model, x, rtol=rtol, reference=True, training=True)

    t32, t64 = copy.deepcopy(module), copy.deepcopy(module).double()
    _synchronize(table, t64, t32, keras_model)  # undo the forward pass's moving-statistics update
    train_keras = _keras_trainer(keras_model, probabilities, learning_rate, momentum, weight_decay)
    train_t32 = _torch_trainer(t32, probabilities, learning_rate, momentum, weight_decay, torch_weight_decay)
    train_t64 = _torch_trainer(t64, probabilities, learning_rate, momentum, weight_decay, "decoupled")

    rows, losses = [], []
    for step in range(1, steps + 1):
        if step > 1:
            _synchronize(table, t64, t32, keras_model)
        before = _torch_state(t64)
        losses.append({"torch": train_t32(x, y), "keras": train_keras(x, y), "float64": train_t64(x, y)})
        rows += _step_rows(step, table, before, _torch_state(t32), _torch_state(t64), _keras_state(table, keras_model), step_rtol)
    settings = {"batch": batch, "steps": steps, "lr": learning_rate, "momentum": momentum,
                "weight_decay": weight_decay, "loss": "probabilities" if probabilities else "logits"}
    if torch_weight_decay != "decoupled":
        settings["torch_weight_decay"] = torch_weight_decay
    return TrainReport(variant, forward, rows, losses, step_rtol, settings)


# --- the shipped training steps, fed numpy batches --------------------------------------------


def _torch_trainer(module, probabilities, lr, momentum, weight_decay, decay="decoupled"):
    """``alexnet_torch.training.train_step`` with the optimizer ``alexnet-train`` makes
    (``alexnet_torch.training.sgd``); ``decay="coupled"``: PyTorch's own SGD weight decay instead,
    through the same step (the wrong convention the check must catch)."""
    import torch

    from alexnet_torch.training import sgd, train_step

    if decay == "coupled":
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        optimizer = sgd(module, lr=lr, momentum=momentum, weight_decay=weight_decay)
    dtype = next(module.parameters()).dtype
    module.train()

    def step(x, y) -> float:
        images, targets = torch.from_numpy(x).to(dtype), torch.from_numpy(y).long()
        loss, _ = train_step(module, optimizer, images, targets, probabilities=probabilities)
        return loss.item()

    return step


def _keras_trainer(model, probabilities, lr, momentum, weight_decay):
    """``train_on_batch`` on the model ``alexnet_keras.training.compile_for_training`` compiled."""
    from alexnet_keras.training import compile_for_training

    compile_for_training(model, _recipe(momentum, weight_decay), lr, probabilities=probabilities, metrics=False,
                         jit_compile=False,  # XLA may fuse and reorder; plain kernels are what we compare
                         run_eagerly=True)  # a few steps: tracing the train function would cost more than it saves

    def step(x, y) -> float:
        return float(model.train_on_batch(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y))

    return step


def _recipe(momentum: float, weight_decay: float):
    """``cifar``'s recipe with the check's optimizer numbers (the learning rate is passed on its own)."""
    from dataclasses import replace

    from alexnet_training.recipes import CIFAR

    return replace(CIFAR, momentum=momentum, weight_decay=weight_decay)


def _synchronize(table, t64, t32, keras_model) -> None:
    """Start the next step of all three from the float64 weights rounded to float32.

    Optimizer state (momentum) stays each framework's own, so later steps still test it. Without
    this the check would measure chaos, not conventions: one step leaves the frameworks one fp32
    rounding apart, and the network amplifies that (ReLUs flip, batch statistics couple the
    samples). Measured on cifar, batch 8: float64 gradients at the two fp32-rounded states after
    one step differed by 1.4%, from weights that differed by 2e-7.
    """
    import torch

    from alexnet_keras.weights import set_layer_weights
    from alexnet_spec.port import torch_to_keras as to_keras_arrays

    state = {k: v.float() if v.is_floating_point() else v for k, v in t64.state_dict().items()}
    with torch.no_grad():  # in place: the optimizers keep their momentum for these parameters
        for key, value in t64.state_dict().items():
            value.copy_(state[key])
        for key, value in t32.state_dict().items():
            value.copy_(state[key])
    set_layer_weights(keras_model, to_keras_arrays(table, {k: v.numpy() for k, v in state.items()}))


# --- comparison of the states ------------------------------------------------------------------


def _torch_state(module) -> dict[str, np.ndarray]:
    """A float64 copy (``.double()`` of a float64 tensor is the tensor itself, not a copy)."""
    return {k: v.detach().double().numpy().copy() for k, v in module.state_dict().items()}


def _keras_state(table, model) -> dict[str, np.ndarray]:
    from alexnet_keras.weights import layer_weights
    from alexnet_spec.port import keras_to_torch

    return {k: v.astype(np.float64) for k, v in keras_to_torch(table, layer_weights(model)).items()}


def _step_rows(step, table, before, t32, t64, k32, step_rtol) -> list[StepRow]:
    rows = []
    for entry in table.entries:
        keys, names = entry.torch_keys(), [n.split("/")[1] for n in entry.keras_names()]
        groups = [(keys[:2], names[:2]), (keys[2:], names[2:])] if entry.kind == "batchnorm" else [(keys, names)]
        for group_keys, group_names in groups:
            # relative to the largest change in the group: a bias ahead of a BatchNorm has no
            # gradient (the batch mean removes it), so its own change is decay below fp32's grain
            scale = max(float(np.max(np.abs(t64[key] - before[key]))) for key in group_keys)
            cross = torch_err = keras_err = 0.0
            for key in group_keys:
                change, t, k = t64[key] - before[key], t32[key] - before[key], k32[key] - before[key]
                cross = max(cross, float(np.max(np.abs(t - k))))
                torch_err = max(torch_err, float(np.max(np.abs(t - change))))
                keras_err = max(keras_err, float(np.max(np.abs(k - change))))
            rel = _relative(cross, scale)
            grain = max(float(np.spacing(np.float32(np.max(np.abs(t64[key]))))) for key in group_keys)
            allowed = step_rtol * scale + ULPS * grain  # each framework stores its result rounded
            rows.append(StepRow(step, entry.keras, ", ".join(group_names), tuple(group_keys), cross, rel,
                                _relative(torch_err, scale), _relative(keras_err, scale), allowed, ok=cross <= allowed))
    return rows


def _relative(error: float, scale: float) -> float:
    if scale > 0:
        return error / scale
    return 0.0 if error == 0 else math.inf




# --- many steps: do the two runs go the same way? ------------------------------------------------

# A loss counts as drifted from another once they differ by more than this, relative. One fp32 step
# agrees with float64 to ~1e-7 relative; rounding then compounds (ReLU kinks flip, batch statistics
# couple the samples) until the fp32 runs leave float64 too, which is the horizon fp32 allows.
DRIFT_RTOL = 1e-4


@dataclass
class StepsReport:
    variant: str
    losses: list[dict]  # per step: torch, keras, float64
    weights: dict  # after the last step: max difference relative to each tensor's float64 change
    drift: dict  # first step where each pair differs by more than DRIFT_RTOL (None: never)
    settings: dict = field(default_factory=dict)

    @property
    def trusted(self) -> int:
        """Steps over which the fp32 run closer to float64 stays within DRIFT_RTOL of it: the
        horizon fp32 allows (rounding, amplified by the network, decides it, not a convention)."""
        n = len(self.losses)
        ends = [n if s is None else s - 1 for s in (self.drift["torch_vs_float64"], self.drift["keras_vs_float64"])]
        return max(ends)

    @property
    def ok(self) -> bool:
        """Step 1 (same weights, same batch, nothing updated yet) agrees within DRIFT_RTOL: a run fed
        other batches, another loss or a wrong forward convention fails here. Later steps are
        measured, not judged: from step 2 on, fp32 rounding amplified by the network moves both
        runs away from float64 (and from each other) as fast as a convention error would, so
        optimizer conventions are the synchronized ``check_train_step``'s job."""
        return self.drift["torch_vs_keras"] != 1

    def verdict(self) -> str:
        d, n = self.drift, len(self.losses)
        apart = f"drift apart (>{DRIFT_RTOL:.0e} relative) at step {d['torch_vs_keras']}" if d["torch_vs_keras"] else \
            f"stay within {DRIFT_RTOL:.0e} of each other for all {n} steps"
        head = "PASS" if self.ok else "FAIL"
        return (f"{head}: {self.variant}, {n} SGD steps from the same weights and batches (dropout off): the fp32 "
                f"losses of torch and Keras {apart}; fp32 tracks float64 within {DRIFT_RTOL:.0e} for "
                f"{self.trusted} step(s) (torch leaves it at step {d['torch_vs_float64']}, Keras at step "
                f"{d['keras_vs_float64']}; None: never)")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "ok": self.ok, "verdict": self.verdict(), "settings": self.settings,
                "drift_rtol": DRIFT_RTOL, "drift": self.drift, "trusted_steps": self.trusted,
                "weights": self.weights, "losses": self.losses}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        lines = [f"{self.variant} training run parity ({settings}):",
                 "step  torch loss    keras loss    float64 loss  |torch-keras|  |torch-f64|  |keras-f64|"]
        for i, d in enumerate(self.losses, start=1):
            lines.append(f"{i:<4}  {d['torch']:<12.7f}  {d['keras']:<12.7f}  {d['float64']:<12.7f}  "
                         f"{abs(d['torch'] - d['keras']):<13.2e}  {abs(d['torch'] - d['float64']):<11.2e}  "
                         f"{abs(d['keras'] - d['float64']):.2e}")
        w = self.weights
        lines.append(f"weights after {len(self.losses)} steps, max difference relative to each tensor's float64 change: "
                     f"torch-keras {w['torch_vs_keras']:.2e}, torch-float64 {w['torch_vs_float64']:.2e}, "
                     f"keras-float64 {w['keras_vs_float64']:.2e}")
        return "\n".join(lines + [self.verdict()])


def check_train_steps(
    variant: str = "cifar",
    *,
    steps: int = 50,
    seed: int = 0,
    batch: int = 16,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    momentum: float = DEFAULT_MOMENTUM,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    options: dict | None = None,
    start=None,
) -> StepsReport:
    """Train a freshly initialized ``variant`` (PyTorch's initialization seeded with ``seed``,
    dropout off) for ``steps`` SGD steps in PyTorch (fp32 and float64) and Keras (fp32) from the same
    weights, on the same batches (the ``cifar``
    network: augmented digits from ``alexnet_training.augment``; the others: seeded random images), each
    run on its own; compare the per-step losses and the final weights.

    ``start``: an exchange record (``parity.files.read``, e.g. of ``alexnet-train init``'s file) to
    start from instead, loaded into each framework's model as ``alexnet-train --init`` loads it."""
    import torch

    import alexnet_torch
    from alexnet_spec import get_spec
    from alexnet_spec.tables import get_table
    from parity.models import torch_to_keras
    from parity.randomize import random_batch

    if batch < 2:
        raise ValueError(f"batch must be at least 2 (BatchNorm trains on batch statistics); found {batch}")
    if start is not None:
        variant = start.variant
    spec, table = get_spec(variant), get_table(variant)
    if start is None:
        torch.manual_seed(seed)  # a training run's start, not parity's randomized statistics
        module = alexnet_torch.build(variant, dropout=0.0, **(options or {}))
        keras_model = torch_to_keras(module, dropout=0.0)
    else:
        module, keras_model = _from_start(start, options)
    probabilities = spec.softmax and not module.options.get("logits", False)
    batches = _run_batches(variant, spec, steps, seed, batch, random_batch)
    t32, t64 = copy.deepcopy(module), copy.deepcopy(module).double()
    start = _torch_state(t64)
    train_t32 = _torch_trainer(t32, probabilities, learning_rate, momentum, weight_decay, "decoupled")
    train_t64 = _torch_trainer(t64, probabilities, learning_rate, momentum, weight_decay, "decoupled")
    train_keras = _keras_trainer(keras_model, probabilities, learning_rate, momentum, weight_decay)
    losses = [{"torch": train_t32(x, y), "keras": train_keras(x, y), "float64": train_t64(x, y)} for x, y in batches]

    def first_drift(a, b):
        return next((i for i, d in enumerate(losses, start=1)
                     if abs(d[a] - d[b]) > DRIFT_RTOL * max(abs(d["float64"]), 1e-12)), None)

    drift = {"torch_vs_keras": first_drift("torch", "keras"), "torch_vs_float64": first_drift("torch", "float64"),
             "keras_vs_float64": first_drift("keras", "float64")}
    s32, s64, k32 = _torch_state(t32), _torch_state(t64), _keras_state(table, keras_model)
    weights = {"torch_vs_keras": 0.0, "torch_vs_float64": 0.0, "keras_vs_float64": 0.0}
    for key in k32:
        scale = float(np.max(np.abs(s64[key] - start[key])))
        if scale == 0:
            continue
        for name, (a, b) in {"torch_vs_keras": (s32, k32), "torch_vs_float64": (s32, s64),
                             "keras_vs_float64": (k32, s64)}.items():
            weights[name] = max(weights[name], float(np.max(np.abs(a[key] - b[key]))) / scale)
    settings = {"steps": steps, "batch": batch, "lr": learning_rate, "momentum": momentum, "weight_decay": weight_decay,
                "data": "digits (augmented, alexnet_training.augment)" if variant == "cifar" else "seeded random images"}
    return StepsReport(variant, losses, weights, drift, settings)


def _from_start(start, options):
    """Both frameworks' models with dropout off, ``start``'s weights loaded as ``alexnet-train
    --init`` loads them (``parity.files.load_torch``, ``load_keras``)."""
    import alexnet_keras
    import alexnet_torch
    from parity import files

    build = {**start.options, **(options or {}), "num_classes": files.num_classes(start), "dropout": 0.0}
    return (files.load_torch(alexnet_torch.build(start.variant, **build), start),
            files.load_keras(alexnet_keras.build(start.variant, **build), start))


def _run_batches(variant, spec, steps, seed, batch, random_batch):
    if variant == "cifar":
        from alexnet_training.augment import Pipeline
        from alexnet_training.data import load_digits
        from alexnet_training.recipes import CIFAR

        pipeline = Pipeline(load_digits()[0], CIFAR.augment, train=True, seed=seed, batch_size=batch)
        out = []
        for step in range(steps):
            x, y = pipeline.batch(step % pipeline.num_batches, step // pipeline.num_batches)
            out.append((np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y))
        return out
    rng = np.random.default_rng(seed + 2)
    return [(random_batch((batch, *spec.input_shape_nchw), seed + 1 + step), rng.integers(0, spec.num_classes, batch))
            for step in range(steps)]


__all__ = ["DRIFT_RTOL", "STEP_RTOL", "TRAIN_RTOL", "StepRow", "StepsReport", "TrainReport", "check_train_step", "check_train_steps"]
