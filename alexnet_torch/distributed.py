"""Data-parallel training on PyTorch's own engine: ``torchrun`` launches the processes,
``DistributedDataParallel`` averages their gradients.

    torchrun --standalone --nproc_per_node 2 -m alexnet_cli.train --framework torch --variant cifar ...

:func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the process group: gloo on CPU, nccl when CUDA is available. With
``WORLD_SIZE`` unset or 1 it returns None and nothing here is used: one process trains exactly as
``alexnet_torch.training`` always did.

What N replicas share with one process of the same *global* batch B (each replica takes B/N):

- the data: :class:`ShardSampler` gives replica r the r-th slice of every global batch of the
  pipeline's order, so the replicas' batches put together are one process's batch, sample for
  sample, with the same augmentation (``Pipeline.sample(index, epoch)`` depends on nothing else).
  The pipeline drops the last partial *global* batch, as one process does, so every replica takes
  the same number of steps and the epoch holds the same samples whatever the replica count;
- the gradient: DDP averages the replicas' mean-loss gradients, the gradient of the global mean;
- BatchNorm (``cifar``) only with ``sync_bn``: :class:`SyncBatchNormKeras` normalizes with the
  statistics of the global batch and keeps Keras's biased running variance (``torch.nn.SyncBatchNorm``
  would store the unbiased one). Without it each replica normalizes by its own B/N samples;
- not dropout: each replica draws its own masks (seeded by seed, epoch and rank).

A replica that dies ends the job: torchrun stops the others, and a collective that cannot reach a
peer fails after ``timeout`` seconds (default :data:`DEFAULT_TIMEOUT_S`, 300 s) with
:class:`ReplicaLost` instead of hanging. Rank 0 alone writes files, each atomically, and the others
wait at a barrier, so no replica reads a half-written file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from alexnet_torch.batchnorm import _BiasedRunningVariance
from alexnet_torch.training import AugmentedDataset

DEFAULT_TIMEOUT_S = 300
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class ReplicaLost(RuntimeError):
    """Another replica stopped, or did not answer within the process group's timeout."""

    for_user = True  # the message says what happened and what to do (alexnet_cli.console)


@dataclass(frozen=True)
class Replicas:
    """This process's place among the replicas of a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    timeout_s: float

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def per_replica(self, batch: int) -> int:
        """The global batch split evenly, or a clear refusal."""
        if batch % self.world_size:
            raise ValueError(f"--batch-size is the global batch, split evenly over the {self.world_size} replicas; "
                             f"{batch} is not divisible by {self.world_size}. Use a multiple of {self.world_size}.")
        return batch // self.world_size

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around ``model`` (on this replica's device); rank 0's weights and buffers are
        broadcast to the others here, so every replica starts from the same state."""
        model.to(self.device)
        ids = [self.local_rank] if self.backend == "nccl" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def loader(self, pipeline, *, workers: int = 0) -> DataLoader:
        """This replica's share of ``pipeline``, in batches of ``pipeline.batch_size / world_size``."""
        sampler = ShardSampler(pipeline, self.rank, self.world_size)
        return DataLoader(AugmentedDataset(pipeline), batch_size=sampler.batch_size, sampler=sampler,
                          num_workers=workers, generator=torch.Generator().manual_seed(pipeline.seed))

    def sum(self, *values: float) -> tuple[float, ...]:
        """Sums over the replicas (float64: counts stay exact)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return tuple(t.tolist())

    def seed(self, seed: int, epoch: int) -> None:
        """Dropout masks of this replica and epoch: reproducible on resume, different per replica."""
        torch.manual_seed(hash((seed, epoch, self.rank)) & 0x7FFF_FFFF_FFFF_FFFF)

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's BatchNorm statistics everywhere (DDP broadcasts them only at the next forward),
        so every replica evaluates the network rank 0 saves."""
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)

    def barrier(self) -> None:
        dist.barrier()

    @contextlib.contextmanager
    def guard(self, run_dir) -> None:
        """A failed collective becomes one clear message (torch's own text is kept in the chain)."""
        try:
            yield
        except dist.DistError as err:
            raise ReplicaLost(_lost(self, run_dir, err)) from err
        except RuntimeError as err:  # gloo reports a closed connection as a plain RuntimeError
            if not any(word in str(err).lower() for word in ("gloo", "nccl", "connection", "timed out", "timeout")):
                raise
            raise ReplicaLost(_lost(self, run_dir, err)) from err


def _lost(replicas: Replicas, run_dir, err) -> str:
    cause = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return (f"replica {replicas.rank} of {replicas.world_size} lost the others ({cause}): a replica stopped, or "
            f"did not answer within the {replicas.timeout_s:g} s timeout. The last complete epoch is "
            f"checkpointed in {run_dir}; start the job again with --resume (on any number of replicas).")


def setup(timeout_s: float = DEFAULT_TIMEOUT_S) -> Replicas | None:
    """Join the process group torchrun describes in the environment; None for one process."""
    world = os.environ.get("WORLD_SIZE", "1")
    try:
        world_size = int(world)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a number of processes; found {world!r}. Launch with torchrun.") from None
    if world_size <= 1:
        return None
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: launch the processes with "
                         "torchrun (it sets all of them), or unset WORLD_SIZE for one process.")
    if timeout_s <= 0:
        raise ValueError(f"the process-group timeout must be positive; found {timeout_s}")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return Replicas(rank, world_size, local_rank, backend, timeout_s)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class ShardSampler(Sampler):
    """Replica ``rank``'s part of the pipeline's epoch order: slice ``rank`` of every global batch.

    Like ``DistributedSampler`` (``set_epoch`` each epoch), but cut per batch rather than strided
    over the epoch, so the replicas' step-k batches together are one process's step-k batch.
    A final partial batch (evaluation keeps it) is cut the same way: later replicas may get fewer
    samples, or none, of it.
    """

    def __init__(self, pipeline, rank: int, world_size: int) -> None:
        if pipeline.batch_size % world_size:
            raise ValueError(f"a global batch of {pipeline.batch_size} cannot be split evenly over {world_size} "
                             "replicas; use a multiple of the replica count")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}); found {rank}")
        self.pipeline, self.rank, self.world_size, self.epoch = pipeline, rank, world_size, 0
        self.batch_size = pipeline.batch_size // world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> list[int]:
        order, big, small = self.pipeline.order(self.epoch), self.pipeline.batch_size, self.batch_size
        mine = []
        for start in range(0, len(order), big):
            mine += order[start + self.rank * small:start + (self.rank + 1) * small].tolist()
        return mine

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


# --8<-- [start:sync-bn]
class SyncBatchNormKeras(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all replicas, with Keras's biased running variance
    (``torch.nn.SyncBatchNorm`` would store the unbiased one)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected (N, C, ...) input; found shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        y, mean, var = _GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.to(x.dtype), self.momentum)
            self.running_var.lerp_(var.to(x.dtype), self.momentum)  # biased, as Keras
        return y
# --8<-- [end:sync-bn]


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch normalization with the statistics of all replicas' samples and its analytic gradient
    (SyncBatchNorm's: two all-reduced sums forward, two backward).

    The sums accumulate in float64, as PyTorch's CPU batch norm does: a decomposed fp32 version was
    measured 100x further from float64 in the gradients of ``cifar`` (1e-3 against 1e-5 of each
    layer's largest gradient), where a pre-BatchNorm gradient is a sum that cancels to zero.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        axes, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        count = torch.full((1,), x.numel() // x.shape[1], dtype=torch.float64, device=x.device)
        total = _all_reduce(torch.cat([x.sum(axes, dtype=torch.float64), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.to(x.dtype).view(shape)
        var = _all_reduce((centred * centred).sum(axes, dtype=torch.float64)) / n
        invstd = torch.rsqrt(var + eps)
        scale = (invstd * weight.double()).to(x.dtype)
        ctx.save_for_backward(centred, invstd, weight)
        ctx.n, ctx.axes, ctx.shape = n, axes, shape
        ctx.mark_non_differentiable(mean, var)
        return centred * scale.view(shape) + bias.view(shape), mean, var

    @staticmethod
    def backward(ctx, dy, _mean, _var):
        centred, invstd, weight = ctx.saved_tensors
        axes, shape, c = ctx.axes, ctx.shape, centred.shape[1]
        sum_dy = dy.sum(axes, dtype=torch.float64)
        sum_dy_xmu = (dy * centred).sum(axes, dtype=torch.float64)
        grad_weight, grad_bias = (sum_dy_xmu * invstd).to(weight.dtype), sum_dy.to(weight.dtype)  # this replica's
        total = _all_reduce(torch.cat([sum_dy, sum_dy_xmu]))  # every replica's samples feed every output
        mean_dy, mean_dy_xmu = total[:c] / ctx.n, total[c:] / ctx.n
        k = (invstd * invstd * mean_dy_xmu).to(dy.dtype).view(shape)
        dx = (dy - mean_dy.to(dy.dtype).view(shape) - centred * k) * (invstd * weight.double()).to(dy.dtype).view(shape)
        return dx, grad_weight, grad_bias, None


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    """Sum over replicas, in place (one process: nothing to add)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t


def convert_sync_batchnorm(model: nn.Module) -> int:
    """Replace every Keras-convention BatchNorm in ``model`` by :class:`SyncBatchNormKeras`, in
    place, sharing its parameters and buffers (``state_dict`` keys stay the same); returns how many."""
    count = 0
    for name, child in model.named_children():
        if isinstance(child, _BiasedRunningVariance):
            sync = SyncBatchNormKeras(child.num_features, eps=child.eps, momentum=child.momentum,
                                      affine=child.affine, track_running_stats=child.track_running_stats)
            sync.weight, sync.bias = child.weight, child.bias
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(sync, buffer, getattr(child, buffer))
            sync.train(child.training)
            setattr(model, name, sync)
            count += 1
        else:
            count += convert_sync_batchnorm(child)
    return count


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


__all__ = ["DEFAULT_TIMEOUT_S", "ReplicaLost", "Replicas", "ShardSampler", "SyncBatchNormKeras",
           "convert_sync_batchnorm", "setup", "shutdown", "unwrap"]
