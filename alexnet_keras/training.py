"""Training AlexNet in Keras: ``model.fit`` with callbacks, fed by a ``keras.utils.PyDataset``.

The batches come from ``alexnet_training.augment.Pipeline`` (numpy, seeded by seed, epoch and index),
the same arrays the PyTorch loop's ``DataLoader`` yields. The numbers come from an
``alexnet_training.recipes.Recipe``: Keras's SGD with its own (decoupled) weight decay (``alexnet_keras.optim``),
the learning rate set each epoch by ``keras.callbacks.LearningRateScheduler`` from the recipe's
schedule.

:class:`RunLogger` writes, at the end of every epoch, an atomic checkpoint (every model variable,
Dropout's seed state included, every optimizer variable, the epoch and the metrics rows) with its
sha256 sidecar, ``metrics.csv`` and one line on stderr (``runs.epoch_line``); :func:`train` with
``resume=True`` verifies and restores them and continues with ``fit(initial_epoch=...)``.
:class:`FiniteLoss` stops ``fit`` at the first nan or inf loss with ``runs.Diverged``, before
that epoch is checkpointed. This module never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import weakref
from pathlib import Path

import keras
import numpy as np
from keras import ops

from alexnet_keras.optim import SGD
from alexnet_training import runs
from alexnet_training.augment import Pipeline
from alexnet_training.metrics import log_softmax, topk_hits
from alexnet_training.precise_bn import batch_moments, combine_moments, precise_bn_batches
from alexnet_training.recipes import Recipe, learning_rate


class BatchSequence(keras.utils.PyDataset):
    """``Pipeline`` as a ``PyDataset``: batch ``number`` of the current epoch, NHWC.

    ``workers``: processes that build the batches, as PyTorch's ``DataLoader`` workers (0: the
    main process builds them). Keras starts them when an epoch's first batch is asked for, after
    :class:`EpochSetter` has set the epoch, so they read that epoch's batches."""

    def __init__(self, pipeline: Pipeline, *, workers: int = 0, **kwargs) -> None:
        if workers:
            kwargs |= {"workers": workers, "use_multiprocessing": True}
        super().__init__(**kwargs)
        self.pipeline, self.epoch = pipeline, 0

    def __len__(self) -> int:
        return self.pipeline.num_batches

    def __getitem__(self, number: int):
        return self.pipeline.batch(number, self.epoch)


class EpochSetter(keras.callbacks.Callback):
    """Tells the training sequence which epoch ``fit`` is in (its crops and order depend on it)."""

    def __init__(self, sequence: BatchSequence) -> None:
        super().__init__()
        self.sequence = sequence

    def on_epoch_begin(self, epoch, logs=None):
        self.sequence.epoch = epoch


# --8<-- [start:precise-bn]
def update_bn_stats(model, batches) -> int:
    """Set every BatchNormalization's moving statistics to the mean and variance of its inputs over
    ``batches`` (NHWC arrays), BatchNormalization in training mode, dropout off
    (``alexnet_training.precise_bn``); returns how many layers it set. The model must be a chain of
    layers, as every network here is: each layer is called on the previous one's output."""
    norms = [layer for layer in model.layers  # a frozen one keeps its statistics
             if isinstance(layer, keras.layers.BatchNormalization)
             and layer.trainable]
    if not norms:
        return 0
    moments = [[] for _ in norms]
    probe = _bn_inputs_model(model, norms)
    for x in batches:
        # one compiled call, not layer by layer; a list even for one layer
        inputs = keras.tree.flatten(probe.predict_on_batch(x))
        for found, layer, value in zip(moments, norms, inputs):
            found.append(batch_moments(value, layer.axis))
    for layer, found in zip(norms, moments):
        mean, var = combine_moments(found)
        with np.errstate(over="ignore"):  # an inf the run's guard reports
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(
                var.astype(layer.moving_variance.dtype))
    return len(norms)


class InTraining(keras.layers.Layer):
    """Calls ``layer`` in training mode whatever mode the model runs in."""

    def __init__(self, layer, **kwargs):
        super().__init__(name=f"{layer.name}_in_training", **kwargs)
        self.layer = layer

    def call(self, x):
        return self.layer(x, training=True)


_PROBES = weakref.WeakKeyDictionary()  # model -> (its norms' names, _bn_inputs_model)


def _bn_inputs_model(model, norms):
    """``model``'s own layers up to its last BatchNormalization, as a model
    whose outputs are each BatchNormalization's input: those run in training
    mode, every other layer in inference mode (``predict``'s). Built once per
    model, so Keras traces its predict function once."""
    names = tuple(layer.name for layer in norms)  # which ones are trainable
    if model in _PROBES and _PROBES[model][0] == names:
        return _PROBES[model][1]
    chain = [layer for layer in model.layers
             if not isinstance(layer, keras.layers.InputLayer)]
    for before, after in zip(chain, chain[1:]):
        if after.input is not before.output:
            raise ValueError(f"{model.name}: {after.name} does not read "
                             f"{before.name}'s output; precise BatchNorm "
                             "statistics here need a chain of layers")
    x = inputs = keras.Input(batch_shape=model.inputs[0].shape,
                             dtype=model.inputs[0].dtype)
    outputs = []
    for layer in chain[:chain.index(norms[-1]) + 1]:
        if any(layer is norm for norm in norms):  # not a frozen one
            outputs.append(x)
            layer = InTraining(layer)
        x = layer(x)
    _PROBES[model] = names, keras.Model(inputs, outputs)
    return _PROBES[model][1]


class PreciseBN(keras.callbacks.Callback):
    """Recomputes the moving statistics before ``fit``'s validation pass (``on_test_begin``: fit
    validates after the epoch's last batch and before ``on_epoch_end``)."""

    def __init__(self, pipeline: Pipeline, samples: int) -> None:
        super().__init__()
        self.pipeline, self.samples, self.epoch = pipeline, samples, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):
        update_bn_stats(self.model, precise_bn_batches(self.pipeline, self.epoch,
                                                       self.samples))
# --8<-- [end:precise-bn]


class FiniteLoss(keras.callbacks.Callback):
    """Stops ``fit`` with ``runs.Diverged`` at the first batch whose loss (the epoch's running mean:
    nan or inf from the first bad batch on) is not finite. Keras's ``TerminateOnNaN`` stops ``fit``
    as if it had finished, and the run would publish its model."""

    def __init__(self, run_dir=None) -> None:
        super().__init__()
        self.run_dir, self.epoch = run_dir, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            err = runs.Diverged(f"the loss is {loss}", f"step {batch + 1} of {self.params['steps']}")
            raise err if self.run_dir is None else err.during(self.epoch + 1, self.run_dir,
                                                              _learning_rate(self.model))


def nonfinite_weights(model) -> list[str]:
    """The paths of the floating-point variables that hold nan or inf (checked where they live:
    a copy of every variable to numpy took 10x longer on cifar)."""
    return [v.path for v in model.variables
            if "float" in str(v.dtype) and not bool(ops.all(ops.isfinite(v)))]


class ProgressBar(keras.callbacks.Callback):
    """The PyTorch loop's transient bar (``runs.progress_bar``) over each epoch's batches, in place
    of Keras's own, which leaves a line per epoch that ``runs.epoch_line`` already prints."""

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = runs.progress_bar(desc=f"epoch {epoch + 1}/{self.params['epochs']}", total=self.params["steps"])

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update()

    def on_test_begin(self, logs=None):  # fit's validation: the training batches are done
        self.bar.close()

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()  # again: closing twice is harmless


class RunLogger(keras.callbacks.Callback):
    """One metrics row, a checkpoint and ``metrics.csv`` at the end of every epoch (``write``: the
    chief of a multi-worker job writes them; the other workers keep the rows only), and the
    epoch's line on stderr (``lines``); first ``runs.Diverged`` if the validation loss or a weight
    is nan or inf."""

    def __init__(self, run_dir, config: runs.RunConfig, rows: list[dict], *, write: bool = True,
                 lines: bool = False) -> None:
        super().__init__()
        self.run_dir, self.config, self.rows, self.write, self.lines = Path(run_dir), config, rows, write, lines

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # every worker checks (the numbers are the same on all): nothing nan is checkpointed,
        # nor published at the end
        with runs.epoch_context(epoch + 1, self.run_dir, _learning_rate(self.model)):
            runs.check_finite("the validation loss", float(logs["val_loss"]))
            runs.check_weights(nonfinite_weights(self.model))
        self.rows.append({
            "epoch": epoch + 1, "train_loss": float(logs["loss"]), "train_top1": float(logs["top1"]),
            "val_loss": float(logs["val_loss"]), "val_top1": float(logs["val_top1"]),
            "val_top5": float(logs["val_top5"]), "lr": _learning_rate(self.model),
            "seconds": time.perf_counter() - self.began,
        })
        if not self.write:
            return
        save_checkpoint(self.run_dir / runs.CHECKPOINTS["keras"], self.model, epoch + 1, self.rows, self.config)
        runs.write_metrics(self.run_dir, self.rows)
        if self.lines:
            print(runs.epoch_line(self.rows[-1], self.config.epochs), file=sys.stderr, flush=True)


def _learning_rate(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


# --8<-- [start:freeze]
def freeze(model, layers) -> None:
    """Train none of ``layers`` (layer names, e.g. ``conv1``): ``trainable =
    False`` before :func:`compile_for_training` (Keras reads it at compile
    time), so the optimizer never sees their weights, and a BatchNormalization
    among them runs in inference mode with its moving statistics (Keras's
    rule; ``alexnet_torch.batchnorm`` follows it)."""
    for name in layers:
        model.get_layer(name).trainable = False
# --8<-- [end:freeze]


# --8<-- [start:compile]
def compile_for_training(model, recipe: Recipe, lr: float | None = None, *,
                         probabilities: bool = False, metrics: bool = True,
                         jit_compile="auto", run_eagerly: bool = False):
    """SGD with the recipe's momentum and (decoupled) weight decay (Keras's,
    its update compiled by XLA: ``alexnet_keras.optim``), and
    cross-entropy on logits; ``probabilities``: the model ends in a softmax
    (:func:`probability_loss`); ``metrics``: top-1 and top-5 for ``fit``'s
    logs (TensorFlow's top-k refuses float64); ``jit_compile``,
    ``run_eagerly``: ``model.compile``'s. A model built under fp16's policy
    (``alexnet_keras.devices``) gets a ``LossScaleOptimizer``."""
    optimizer = SGD(
        learning_rate=recipe.lr if lr is None else lr,
        momentum=recipe.momentum, weight_decay=recipe.weight_decay or None)
    if model.dtype_policy.name == "mixed_float16":
        # the loss scaled up, so float16 gradients do not underflow
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=probability_loss if probabilities
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1"),
                 keras.metrics.MeanMetricWrapper(top5, name="top5")]
        if metrics else None,
        jit_compile=jit_compile,
        run_eagerly=run_eagerly,
    )
    return model


def top5(y_true, y_pred):
    """Keras's top-5 accuracy on float32 scores: TensorFlow's ``in_top_k``
    refuses the bfloat16/float16 outputs of mixed precision."""
    return keras.metrics.sparse_top_k_categorical_accuracy(
        y_true, ops.cast(y_pred, "float32"), k=5)


def probability_loss(y_true, y_pred):
    """``-log p[label]`` of each sample, on softmax probabilities: the PyTorch
    step's loss (Keras's own probability loss clips and may recover the
    logits, another computation)."""
    index = ops.cast(ops.reshape(y_true, (-1, 1)), "int32")
    return -ops.log(ops.take_along_axis(y_pred, index, axis=1))[:, 0]
# --8<-- [end:compile]


# --8<-- [start:train]
def train(model, recipe: Recipe, train_data: Pipeline, val_data: Pipeline, run_dir,
          config: runs.RunConfig, *, resume: bool = False, workers: int = 0,
          progress: bool = True, epoch_lines: bool = True,
          replicas=None) -> list[dict]:
    """Train ``model`` for ``config.epochs`` epochs; checkpoint and metrics in ``run_dir``.

    ``workers``: processes building the batches (:class:`BatchSequence`). ``progress``: transient
    bars; ``epoch_lines``: ``runs.epoch_line`` on stderr after each epoch (the chief's).
    ``replicas`` (``alexnet_keras.distributed.replicas``): the model was built in its scope; the
    optimizer is made there too, and only its chief writes files."""
    with replicas.scope() if replicas else contextlib.nullcontext():
        compile_for_training(model, recipe, config.lr)
        rows, start = [], 0
        if resume:
            rows, start = load_checkpoint(
                Path(run_dir) / runs.CHECKPOINTS["keras"], model, config)
    train_seq = BatchSequence(train_data, workers=workers)
    val_seq = BatchSequence(val_data, workers=workers)
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: learning_rate(
            recipe, epoch, [r["val_top1"] for r in rows], lr=config.lr))
    chief = replicas is None or replicas.chief
    callbacks = [EpochSetter(train_seq), schedule, FiniteLoss(run_dir),
                 *([ProgressBar()] if progress else []),
                 RunLogger(run_dir, config, rows, write=chief,
                           lines=epoch_lines and chief)]
    if config.precise_bn:
        callbacks.insert(2, PreciseBN(train_data, config.precise_bn))
    model.fit(train_seq, validation_data=val_seq, initial_epoch=start,
              epochs=config.epochs,
              # the sequence's own order; fit would shuffle a PyDataset's batches
              shuffle=False,
              callbacks=callbacks,
              verbose=0)  # ProgressBar and RunLogger's line instead
    return rows
# --8<-- [end:train]


def save_checkpoint(path, model, epoch: int, rows: list[dict], config: runs.RunConfig) -> Path:
    arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer/{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
    meta = {"epoch": epoch, "rows": rows, "variant": config.variant, "num_classes": config.num_classes,
            "model": [v.path for v in model.variables], "optimizer": [v.path for v in model.optimizer.variables]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temporary name
            np.savez(f, **arrays)

    return runs.write_checkpoint(path, write)


def load_checkpoint(path, model, config: runs.RunConfig) -> tuple[list[dict], int]:
    """Verify ``path`` against its sidecar, then load it (no pickles: ``allow_pickle=False``)."""
    path = Path(path)
    runs.verify_checkpoint(path)
    with runs.reading_checkpoint(path):
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(arrays.pop("meta").tobytes())
        variant, classes = meta["variant"], meta["num_classes"]
        names = {group: list(meta[group]) for group in ("model", "optimizer")}
        rows, epoch = list(meta["rows"]), int(meta["epoch"])
        missing = [f"{g}/{i}" for g in names for i in range(len(names[g])) if f"{g}/{i}" not in arrays]
        if missing:
            raise KeyError(missing[0])
    runs.check_checkpoint(path.parent, config, variant, classes)
    model.optimizer.build(model.trainable_variables)
    for group, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        # by path, not by position: the optimizer built here may order its slots otherwise than fit did
        stored = {name: i for i, name in enumerate(names[group])}
        paths = [v.path for v in variables]
        if sorted(paths) != sorted(stored) or len(stored) != len(names[group]):
            raise ValueError(f"{path}: the checkpoint's {len(names[group])} {group} variables are not this "
                             f"{config.variant} run's {len(variables)}. It belongs to another network.")
        for variable in variables:
            value = arrays[f"{group}/{stored[variable.path]}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{path}: {variable.path} has shape {value.shape} in the checkpoint; this run's "
                                 f"has {tuple(variable.shape)}")
            variable.assign(value)
    return rows, epoch


def evaluate(model, pipeline: Pipeline, *, probabilities: bool = False) -> tuple[float, float, float]:
    """Mean loss, top-1 and top-5 accuracy over ``pipeline`` (center crops)."""
    total_loss, top1, top5 = 0.0, 0, 0
    for number in range(pipeline.num_batches):
        x, y = pipeline.batch(number, 0)
        out = np.asarray(model(x, training=False), dtype=np.float64)
        logp = np.log(np.maximum(out, 1e-12)) if probabilities else log_softmax(out)
        total_loss -= float(logp[np.arange(len(y)), y].sum())
        hits = topk_hits(out, y)
        top1, top5 = top1 + hits[0], top5 + hits[1]
    n = len(pipeline)
    return total_loss / n, top1 / n, top5 / n


def ten_crop_probabilities(model, pipeline: Pipeline, index: int, *, probabilities: bool = False) -> np.ndarray:
    """The softmax of item ``index``'s 10 crops (``pipeline.ten_crops``), averaged: float64 (classes,)."""
    out = np.asarray(model(pipeline.ten_crops(index), training=False), dtype=np.float64)
    return (out if probabilities else np.exp(log_softmax(out))).mean(0)


def evaluate_ten_crop(model, pipeline: Pipeline, *, probabilities: bool = False) -> tuple[float, float]:
    """Top-1 and top-5 of the average softmax over the 10 crops of every image (the paper's, or
    Caffe's oversample: whatever ``pipeline.ten_crops`` cuts)."""
    top1 = top5 = 0
    for index in range(len(pipeline.data)):
        p = ten_crop_probabilities(model, pipeline, index, probabilities=probabilities)
        hits = topk_hits(p[None], [pipeline.data.labels[index]])
        top1, top5 = top1 + hits[0], top5 + hits[1]
    n = len(pipeline.data)
    return top1 / n, top5 / n


__all__ = ["BatchSequence", "EpochSetter", "FiniteLoss", "PreciseBN", "ProgressBar", "RunLogger",
           "compile_for_training", "evaluate", "evaluate_ten_crop", "freeze", "nonfinite_weights",
           "probability_loss", "ten_crop_probabilities", "top5", "train", "update_bn_stats"]
