"""Training AlexNet in PyTorch: a plain loop in the style of torchvision's classification references.

The batches come from ``alexnet_training.augment.Pipeline`` (numpy, seeded by seed, epoch and index),
so a ``DataLoader`` with any number of workers yields what the Keras run's ``PyDataset`` yields.
The numbers come from an ``alexnet_training.recipes.Recipe``. Weight decay is Keras's, decoupled
(``w -= lr * wd * w`` before the gradient step): the optimizer is ``alexnet_torch.optim.DecoupledSGD``,
not ``torch.optim.SGD(weight_decay=...)``, which would run it through the momentum (see
``parity.steps``). :func:`train_step` is the one training step: :func:`train_one_epoch` takes it for
every batch, and ``parity.steps`` and ``parity.replicas_torch`` prove it against Keras and across
replicas.

Each epoch ends with an atomic checkpoint (model, optimizer, epoch, metrics rows, torch RNG state)
and its sha256 sidecar, a rewritten ``metrics.csv`` and one line on stderr
(``runs.epoch_line``); :func:`train` with ``resume=True`` verifies the checkpoint and continues
from it. A nan or inf loss stops the run with ``runs.Diverged`` before that epoch is checkpointed.
This module never imports tensorflow or keras.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from alexnet_torch import devices
from alexnet_torch.batchnorm import frozen
from alexnet_torch.optim import DecoupledSGD
from alexnet_training import runs
from alexnet_training.augment import Pipeline
from alexnet_training.metrics import topk_hits
from alexnet_training.precise_bn import batch_moments, combine_moments, precise_bn_batches
from alexnet_training.recipes import Recipe, learning_rate


class AugmentedDataset(Dataset):
    """``Pipeline`` as a map-style dataset: item ``index`` as epoch ``epoch`` sees it, NCHW."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.epoch = pipeline, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pipeline.data)

    def __getitem__(self, index: int):
        x, y = self.pipeline.sample(index, self.epoch)
        return torch.from_numpy(x.transpose(2, 0, 1).copy()), y


class EpochSampler(Sampler):
    """The pipeline's order of an epoch (like ``DistributedSampler``, ``set_epoch`` each epoch)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.epoch = pipeline, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(self.pipeline.order(self.epoch).tolist())

    def __len__(self) -> int:
        return len(self.pipeline)


def data_loader(pipeline: Pipeline, *, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """``pin_memory``: batches in page-locked memory, copied to a CUDA device while it computes."""
    dataset, sampler = AugmentedDataset(pipeline), EpochSampler(pipeline)
    return DataLoader(dataset, batch_size=pipeline.batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(pipeline.seed))  # leaves the global RNG alone


def set_epoch(loader: DataLoader, epoch: int) -> None:
    loader.dataset.set_epoch(epoch)
    loader.sampler.set_epoch(epoch)


# --8<-- [start:train-one-epoch]
# --8<-- [start:train-step]
def sgd(model, *, lr: float, momentum: float,
        weight_decay: float) -> DecoupledSGD:
    """The optimizer of a training run: SGD with momentum and Keras's
    decoupled weight decay (``alexnet_torch.optim``), over the trainable
    parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return DecoupledSGD(params, lr=lr, momentum=momentum,
                        weight_decay=weight_decay)


def train_step(model, optimizer, images, targets, *,
               probabilities: bool = False, autocast=None, scaler=None):
    """One optimizer step on one batch: forward, loss, zero_grad, backward,
    step. Returns the batch's mean loss and the model's output (both
    detached). The loss is cross-entropy on logits; ``probabilities``: the
    model ends in a softmax, the loss is ``-mean(log p[label])``.
    ``autocast``: mixed precision's dtype for the forward pass
    (torch.bfloat16, torch.float16; None: float32), the loss in float32;
    ``scaler``: float16's ``GradScaler``."""
    with torch.autocast(images.device.type, dtype=autocast,
                        enabled=autocast is not None):
        output = model(images)
    output = output.float()  # the same tensor when it is float32 already
    if probabilities:
        loss = -torch.log(output.gather(1, targets[:, None])).mean()
    else:
        loss = F.cross_entropy(output, targets)
    optimizer.zero_grad()
    if scaler is None:
        loss.backward()
        optimizer.step()  # DecoupledSGD: Keras's weight decay, then SGD's step
    else:  # the loss scaled up, so float16 gradients do not underflow
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # unscales; skips a step with inf gradients
        scaler.update()
    return loss.detach(), output.detach()
# --8<-- [end:train-step]


def train_one_epoch(model, optimizer, loader, *, probabilities: bool = False,
                    progress: bool = False, desc: str = "", reduce=None,
                    guard: bool = True, autocast=None, scaler=None):
    """One pass over ``loader``: mean loss and top-1 accuracy of the training
    batches (``reduce``: sums the loss, hits and count over replicas,
    ``Replicas.sum``; ``autocast``, ``scaler``: :func:`train_step`'s).
    ``guard``: a nan or inf loss raises ``runs.Diverged`` at its step; under
    ``reduce``, after the sum, so every replica stops."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    # a replica's GPU under nccl; else the CPU, a no-op
    device = next(model.parameters()).device
    for step, (images, targets) in enumerate(_bar(loader, progress, desc), 1):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        loss, output = train_step(model, optimizer, images, targets,
                                  probabilities=probabilities,
                                  autocast=autocast, scaler=scaler)
        value = loss.item()
        if guard and reduce is None and not math.isfinite(value):
            raise runs.Diverged(f"the loss is {value}",
                                f"step {step} of {len(loader)}")
        total_loss += value * len(targets)
        correct += (output.argmax(1) == targets).sum().item()
        seen += len(targets)
    if reduce is not None:
        total_loss, correct, seen = reduce(total_loss, correct, seen)
        # a replica that stopped alone would leave the others waiting
        if guard and not math.isfinite(total_loss):
            raise runs.Diverged(
                f"the loss summed over the replicas is {total_loss}")
    return total_loss / seen, correct / seen
# --8<-- [end:train-one-epoch]


# --8<-- [start:freeze]
def freeze(model, layers) -> None:
    """Train none of ``layers`` (submodule names, e.g. ``features.0``): their
    parameters take no gradient, so :func:`sgd` leaves them out (weight decay
    too), and a BatchNorm among them keeps its running statistics
    (``alexnet_torch.batchnorm``), as Keras's ``trainable = False`` does."""
    for name in layers:
        model.get_submodule(name).requires_grad_(False)
    model.train(model.training)  # a frozen BatchNorm leaves training mode now
# --8<-- [end:freeze]


# --8<-- [start:precise-bn]
@torch.no_grad()
def update_bn_stats(model, batches) -> int:
    """Set every BatchNorm's running statistics to the mean and variance of its inputs over
    ``batches`` (NHWC numpy arrays), BatchNorm in training mode, dropout off
    (``alexnet_training.precise_bn``); returns how many layers it set. The variance is the biased one
    over thousands of values, what inference divides by, whichever convention training updates with."""
    layers = [m for m in model.modules()  # a frozen one keeps its statistics
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and not frozen(m)]
    if not layers:
        return 0
    moments = {m: [] for m in layers}
    hooks = [m.register_forward_pre_hook(
                 lambda m, args: moments[m].append(
                     batch_moments(args[0].cpu().numpy(), 1)))
             for m in layers]
    device = layers[0].running_mean.device
    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    try:
        for x in batches:
            model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for m in layers:
        mean, var = combine_moments(moments[m])
        m.running_mean.copy_(torch.from_numpy(mean))
        m.running_var.copy_(torch.from_numpy(var))
    return len(layers)
# --8<-- [end:precise-bn]


@torch.no_grad()
def evaluate(model, loader, *, probabilities: bool = False, progress: bool = False, reduce=None,
             autocast=None):
    """Mean loss, top-1 and top-5 accuracy; ``probabilities``: the model ends in a softmax;
    ``reduce``: sums over replicas, as in :func:`train_one_epoch`; ``autocast``: the run's mixed
    precision (as Keras's validation computes in its model's policy), the loss in float32."""
    model.eval()
    total_loss, top1, top5, seen = 0.0, 0, 0, 0
    device = next(model.parameters()).device
    for images, targets in _bar(loader, progress, "eval"):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            output = model(images)
        output = output.float()
        logp = torch.log(output.clamp_min(1e-12)) if probabilities else F.log_softmax(output, 1)
        total_loss += F.nll_loss(logp, targets, reduction="sum").item()
        hits = topk_hits(output.cpu().numpy(), targets.cpu().numpy())
        top1, top5 = top1 + hits[0], top5 + hits[1]
        seen += len(targets)
    if reduce is not None:
        total_loss, top1, top5, seen = reduce(total_loss, top1, top5, seen)
    return total_loss / seen, top1 / seen, top5 / seen


@torch.no_grad()
def ten_crop_probabilities(model, pipeline: Pipeline, index: int, *, probabilities: bool = False) -> np.ndarray:
    """The softmax of item ``index``'s 10 crops (``pipeline.ten_crops``), averaged: float64 (classes,)."""
    model.eval()
    device = next(model.parameters()).device
    crops = torch.from_numpy(pipeline.ten_crops(index).transpose(0, 3, 1, 2).copy()).to(device)
    output = model(crops).float()
    return (output if probabilities else output.softmax(1)).mean(0).double().cpu().numpy()


def evaluate_ten_crop(model, pipeline: Pipeline, *, probabilities: bool = False, progress: bool = False):
    """Top-1 and top-5 of the average softmax over the 10 crops of every image (the paper's, or
    Caffe's oversample: whatever ``pipeline.ten_crops`` cuts)."""
    top1 = top5 = 0
    for index in _bar(range(len(pipeline.data)), progress, "10-crop"):
        p = ten_crop_probabilities(model, pipeline, index, probabilities=probabilities)
        hits = topk_hits(p[None], [pipeline.data.labels[index]])
        top1, top5 = top1 + hits[0], top5 + hits[1]
    n = len(pipeline.data)
    return top1 / n, top5 / n


# --8<-- [start:train]
def train(model, recipe: Recipe, train_data: Pipeline, val_data: Pipeline, run_dir,
          config: runs.RunConfig, *, resume: bool = False, workers: int = 0,
          progress: bool = True, epoch_lines: bool = True,
          replicas=None, device=None) -> list[dict]:
    """Train ``model`` for ``config.epochs`` epochs; checkpoint and metrics in ``run_dir``.

    ``progress``: transient bars; ``epoch_lines``: ``runs.epoch_line`` on stderr after each
    epoch. ``replicas`` (``alexnet_torch.distributed.setup()``, under torchrun): this process is one
    of several data-parallel replicas; the pipelines' batch size is the global batch. ``device``
    (``alexnet_torch.devices.use_device``): where one process trains (default: where the model is).
    ``config.precision``: fp32, or bf16/fp16 autocast (``alexnet_torch.devices``)."""
    run_dir = Path(run_dir)
    if replicas is not None:
        device = replicas.device
    if device is None:
        device = next(model.parameters()).device
    # before the optimizer: a resumed momentum lands on the model's device
    model.to(device)
    optimizer = sgd(model, lr=config.lr, momentum=recipe.momentum,
                    weight_decay=recipe.weight_decay)
    amp = devices.autocast_dtype(config.precision)
    scaler = devices.grad_scaler(device, config.precision)
    rows, start = [], 0
    if resume:
        rows, start = load_checkpoint(run_dir / runs.CHECKPOINTS["torch"], model,
                                      optimizer, config, scaler=scaler)
    if replicas is None:
        net, reduce, writes = model, None, True
        pin = device.type == "cuda"
        train_loader, val_loader = (
            data_loader(train_data, workers=workers, pin_memory=pin),
            data_loader(val_data, workers=workers, pin_memory=pin))
    else:
        net, reduce, writes = replicas.wrap(model), replicas.sum, replicas.main
        train_loader, val_loader = (replicas.loader(train_data, workers=workers),
                                    replicas.loader(val_data, workers=workers))
    with contextlib.nullcontext() if replicas is None else replicas.guard(run_dir):
        for epoch in range(start, config.epochs):
            began = time.perf_counter()
            lr = learning_rate(recipe, epoch, [r["val_top1"] for r in rows],
                               lr=config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            set_epoch(train_loader, epoch)
            if replicas is not None:
                replicas.seed(config.seed, epoch)
            with runs.epoch_context(epoch + 1, run_dir, lr):
                train_loss, train_top1 = train_one_epoch(
                    net, optimizer, train_loader, progress=progress,
                    desc=f"epoch {epoch + 1}/{config.epochs}", reduce=reduce,
                    autocast=amp, scaler=scaler)
                if replicas is not None:
                    replicas.sync_buffers(model)
                # every replica computes the same statistics from the same batches
                if config.precise_bn:
                    update_bn_stats(model, precise_bn_batches(
                        train_data, epoch, config.precise_bn))
                val_loss, val_top1, val_top5 = evaluate(
                    model, val_loader, reduce=reduce, autocast=amp)
                # nothing nan is checkpointed, nor published at the end
                runs.check_finite("the validation loss", val_loss)
                runs.check_weights(nonfinite_weights(model))
            rows.append({"epoch": epoch + 1, "train_loss": train_loss,
                         "train_top1": train_top1, "val_loss": val_loss,
                         "val_top1": val_top1, "val_top5": val_top5, "lr": lr,
                         "seconds": time.perf_counter() - began})
            # rank 0 alone; the barrier keeps the others from reading a file
            # being written
            if writes:
                save_checkpoint(run_dir / runs.CHECKPOINTS["torch"], model,
                                optimizer, epoch + 1, rows, config,
                                scaler=scaler)
                runs.write_metrics(run_dir, rows)
                if epoch_lines:
                    print(runs.epoch_line(rows[-1], config.epochs),
                          file=sys.stderr, flush=True)
            if replicas is not None:
                replicas.barrier()
    return rows
# --8<-- [end:train]


def nonfinite_weights(model) -> list[str]:
    """The names of the floating-point parameters and buffers that hold nan or inf. A tensor's
    minimum and maximum show both (nan propagates): one pass, 10x faster on CPU than
    ``torch.isfinite`` of every element (measured on cifar: 28 ms against 300 ms)."""
    return [name for name, t in model.state_dict().items()
            if t.is_floating_point() and t.numel()
            and not torch.isfinite(torch.stack(torch.aminmax(t))).all()]


def save_checkpoint(path, model, optimizer, epoch: int, rows: list[dict], config: runs.RunConfig, *,
                    scaler=None) -> Path:
    """``scaler``: fp16's ``GradScaler``, whose scale and growth count a resumed run continues from."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "rows": rows,
             "rng": torch.get_rng_state(), "variant": config.variant, "num_classes": config.num_classes}
    state |= devices.rng_state(next(model.parameters()).device)  # dropout's generator on CUDA
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return runs.write_checkpoint(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path, model, optimizer, config: runs.RunConfig, *, scaler=None) -> tuple[list[dict], int]:
    """Verify ``path`` against its sidecar, then load it (``weights_only``: no pickle runs) onto the
    model's device, whichever device the run was saved from."""
    path = Path(path)
    runs.verify_checkpoint(path)
    with runs.reading_checkpoint(path):
        state = torch.load(path, map_location="cpu", weights_only=True)
        variant, classes = state["variant"], state["num_classes"]
    runs.check_checkpoint(path.parent, config, variant, classes)
    with runs.reading_checkpoint(path):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        devices.set_rng_state(state, next(model.parameters()).device)
        if scaler is not None:  # an fp16 run's (the precision is the run's: runs.prepare)
            scaler.load_state_dict(state["scaler"])
        return list(state["rows"]), int(state["epoch"])


def _bar(iterable, enabled: bool, desc: str):
    return runs.progress_bar(iterable, desc=desc) if enabled else iterable


__all__ = ["AugmentedDataset", "EpochSampler", "data_loader", "evaluate", "evaluate_ten_crop", "freeze",
           "nonfinite_weights", "sgd", "ten_crop_probabilities", "train", "train_one_epoch", "train_step",
           "update_bn_stats"]
