"""A training run's folder, shared by both frameworks' loops (numpy and the standard library only).

``RUN_DIR/run.json``       what the run is (framework, variant, recipe, data, batch, seed, classes)
``RUN_DIR/metrics.csv``    one row per finished epoch, the columns of ``METRICS``
``RUN_DIR/checkpoint.*``   the last finished epoch: weights, optimizer, schedule, RNG state, rows
``RUN_DIR/model.safetensors``  the final weights, readable by ``alexnet-parity port/check``

Every file goes through ``alexnet_spec.files``: a kill leaves the previous complete version, never
half a file. The checkpoint holds the metrics rows too, so ``--resume`` rewrites ``metrics.csv``
from it: a kill between the two writes cannot leave them disagreeing. The checkpoint carries a
sha256 sidecar (:func:`write_checkpoint`) that ``--resume`` verifies before it loads anything.
A run whose loss turns nan or inf stops with :class:`Diverged` before it checkpoints that epoch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import pickle
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from alexnet_spec import checksum
from alexnet_spec.files import atomic_replace, atomic_write

METRICS = ("epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "seconds")
RUN_FILE, METRICS_FILE, FINAL_WEIGHTS = "run.json", "metrics.csv", "model.safetensors"
CHECKPOINTS = {"torch": "checkpoint.pt", "keras": "checkpoint.npz"}
# what a run may change when resumed: how long it goes on, on which device (the checkpoint loads
# onto any; alexnet-train says so when it differs), and where its init file now lies (its sha256
# must not change)
RESUMABLE = ("epochs", "device", "init")


@dataclass
class RunConfig:
    framework: str
    variant: str
    recipe: str
    data: str
    epochs: int
    batch_size: int
    seed: int
    num_classes: int
    options: dict
    lr: float
    precise_bn: int = 0  # training samples for precise BatchNorm statistics before each evaluation (0: off)
    device: str = ""  # where it trained: cpu, cuda:0, gpu:0 ("": a run.json written before devices were recorded)
    precision: str = "fp32"  # fp32, or mixed precision: bf16, fp16
    # where the weights started (alexnet-train --init / --weights; "" for the framework's own seeded
    # initialization), the sha256 of that file, and the part trained not at all ("" or "features").
    # Defaults: run.json files written before these fields read as runs from scratch.
    init: str = ""
    init_sha256: str = ""
    freeze: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def model_options(variant: str, init: str, dropout: float | None = None) -> dict:
    """Build options of a network trained here: ``cifar`` returns logits (the loss takes them),
    ``paper`` starts from the paper's initialization when the recipe says so; ``dropout`` when
    given replaces the network's rate."""
    options = {"logits": True} if variant == "cifar" else {}
    if variant == "paper" and init == "paper":
        options["init"] = "paper"
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1); found {dropout}")
        options["dropout"] = dropout
    return options


def prepare(run_dir: str | os.PathLike, config: RunConfig, *, resume: bool, force: bool) -> RunConfig | None:
    """Check that ``run_dir`` may be used, before anything is written.

    Returns the stored config when resuming (its checkpoint exists), else None. A folder holding a
    run is refused unless ``resume`` (the same run, continued) or ``force`` (replaced).
    """
    run_dir = Path(run_dir)
    if resume and force:
        raise ValueError("--resume continues a run and --force replaces it; give one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file; --out takes a folder for the run")
    ours = [n for n in (RUN_FILE, METRICS_FILE, FINAL_WEIGHTS, *CHECKPOINTS.values()) if (run_dir / n).exists()]
    if resume:
        stored = read_config(run_dir)
        checkpoint = run_dir / CHECKPOINTS[stored.framework]
        differ = {k: (v, getattr(config, k)) for k, v in asdict(stored).items()
                  if k not in RESUMABLE and v != getattr(config, k)}
        if differ:
            what = "; ".join(f"{k}: the run has {a!r}, this command {b!r}" for k, (a, b) in differ.items())
            raise ValueError(f"cannot resume {run_dir} with other settings ({what}). Resume with the run's own "
                             "settings, or start a new run in another folder.")
        if not checkpoint.is_file():
            raise ValueError(f"{run_dir} has no {checkpoint.name}: the run ended before its first epoch. "
                             "Start it again with --force.")
        done = len(read_metrics(run_dir)) if (run_dir / METRICS_FILE).is_file() else 0
        if config.epochs < done or (config.epochs == done and (run_dir / FINAL_WEIGHTS).is_file()):
            raise ValueError(f"{run_dir} has finished {done} epoch{'s' * (done != 1)}, and --epochs {config.epochs} "
                             "leaves nothing to train. Pass a larger --epochs to continue it, or start a new run "
                             "in another folder.")
        return stored
    if ours and not force:
        raise FileExistsError(f"{run_dir} already holds a run ({', '.join(ours)}); refusing to overwrite it. "
                              "Pass --resume to continue it, --force to replace it, or choose another --out.")
    return None


def start(run_dir: str | os.PathLike, config: RunConfig, *, force: bool) -> None:
    """Remove a replaced run's files (``force``) and write ``run.json``."""
    run_dir = Path(run_dir)
    if force:
        for name in (RUN_FILE, METRICS_FILE, FINAL_WEIGHTS, FINAL_WEIGHTS + ".sha256", *CHECKPOINTS.values(),
                     *(n + checksum.SUFFIX for n in CHECKPOINTS.values())):
            if (run_dir / name).is_file():
                (run_dir / name).unlink()
    text = config.to_json()
    atomic_write(run_dir / RUN_FILE, lambda tmp: Path(tmp).write_text(text))


def read_config(run_dir: str | os.PathLike) -> RunConfig:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no run to resume (no {RUN_FILE}); start one without --resume")
    try:
        return RunConfig(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path} is not a run description written by alexnet-train ({err})") from err


def write_metrics(run_dir: str | os.PathLike, rows: list[dict]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRICS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in METRICS})
    text = out.getvalue()
    return atomic_write(Path(run_dir) / METRICS_FILE, lambda tmp: Path(tmp).write_text(text), overwrite=True)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {METRICS_FILE}: not a run folder, or no epoch finished yet")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != METRICS:
            raise ValueError(f"{path}: expected the columns {', '.join(METRICS)}; found {reader.fieldnames}")
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in reader]


def check_checkpoint(run_dir: str | os.PathLike, config: RunConfig, stored_variant: str, stored_classes: int) -> None:
    """A checkpoint must belong to the run (a copied-in file of another network is refused)."""
    if (stored_variant, stored_classes) != (config.variant, config.num_classes):
        raise ValueError(f"{run_dir}: the checkpoint holds a {stored_variant} network with {stored_classes} "
                         f"classes; this run trains {config.variant} with {config.num_classes}. "
                         "Resume with the run's own --variant, or start a new run.")


def write_checkpoint(path: str | os.PathLike, write) -> Path:
    """Replace the checkpoint ``path`` (``write(tmp)`` writes it) and its
    sha256 sidecar so that a kill at any moment leaves a checkpoint the
    sidecar vouches for. The order: the sidecar lists the new digest and
    the ones it listed (they vouch for the checkpoint still there); the new
    checkpoint is renamed over the old; the sidecar lists the new digest
    alone. Each of the three is one rename (``atomic_replace``)."""
    path, side = Path(path), checksum.sidecar(path)
    kept = _listed(side, path.name) if path.is_file() and side.is_file() else []
    new: list[str] = []

    def staged(tmp):
        write(tmp)
        new.append(checksum.sha256(tmp))
        _list_digests(side, path.name, [*new, *kept])

    atomic_replace(path, staged)
    _list_digests(side, path.name, new)
    return path


def verify_checkpoint(path: str | os.PathLike) -> str:
    """The checkpoint's digest, when its sidecar lists it; else a refusal
    (``--resume`` checks this before it loads anything)."""
    path, side = Path(path), checksum.sidecar(path)
    if not side.is_file():
        raise ValueError(f"{path} has no checksum file {side.name} beside it, so it cannot be verified before "
                         "resuming (it was copied without it, or written by an older alexnet-train). Start the "
                         "run again with --force.")
    found = checksum.sha256(path)
    if found not in _listed(side, path.name, strict=True):
        raise ValueError(f"{path} was changed or torn after alexnet-train wrote it: its sha256 {found} is not the "
                         f"one {side.name} lists. Start the run again with --force (or put back the file as "
                         "it was written).")
    return found


def _list_digests(side: Path, name: str, digests: list[str]) -> None:
    text = "".join(checksum.sidecar_line(d, name) for d in digests)
    atomic_replace(side, lambda tmp: Path(tmp).write_text(text))


def _listed(side: Path, name: str, *, strict: bool = False) -> list[str]:
    """The digests ``side`` lists for ``name`` (one, or two while a checkpoint is being replaced)."""
    lines = side.read_text().splitlines()
    rows = [line.split() for line in lines]
    if not lines or any(len(r) != 2 or len(r[0]) != 64 or r[1].lstrip("*") != name for r in rows):
        if strict:
            raise ValueError(f"{side} is not a list of sha256sum lines for {name}, so {name} cannot be verified. "
                             "Start the run again with --force.")
        return []
    return [r[0].lower() for r in rows]


# what reading a torn, damaged or foreign checkpoint raises (torch.load, np.load, json, the dicts)
UNREADABLE = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, KeyError, IndexError, TypeError, ValueError,
              RuntimeError)


@contextlib.contextmanager
def reading_checkpoint(path: str | os.PathLike):
    """The loaders' errors while reading ``path`` become one line that names it. The loader's own
    text is left out (PyTorch's advises the unsafe ``weights_only=False``), and so are the warnings
    of a read that fails (a hostile pickle's protocol): they are passed on only when it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except UNREADABLE as err:
            detail = f"no entry {err}" if isinstance(err, KeyError) else type(err).__name__
            raise ValueError(f"{path} cannot be read as a checkpoint of this run ({detail}): it is torn, damaged, "
                             "or not a file alexnet-train wrote. Start the run again with --force.") from err
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class Diverged(ValueError):
    """The loss (or a weight) became nan or inf: the run stops before it checkpoints that epoch, and
    publishes no model. ``quantity`` says what ("the loss is nan"), ``where`` when in the epoch;
    :meth:`during` adds the run's context where the loop knows it."""

    def __init__(self, quantity: str, where: str | None = None, *, epoch: int | None = None,
                 run_dir: str | os.PathLike | None = None, lr: float | None = None) -> None:
        self.quantity, self.where, self.epoch, self.run_dir, self.lr = quantity, where, epoch, run_dir, lr
        place = ", ".join(p for p in (epoch and f"epoch {epoch}", where) if p)
        text = f"training diverged: {quantity}" + (f" at {place}" if place else "")
        if epoch and run_dir is not None:
            text += (f"; {run_dir} keeps the checkpoint and metrics of epoch {epoch - 1}" if epoch > 1 else
                     f"; no epoch finished, so {run_dir} holds no checkpoint") + ", and no model was published"
        if lr is not None:
            text += f". Lower --lr (now {lr:g}) and start again with --force"
        super().__init__(text + ".")

    def during(self, epoch: int, run_dir: str | os.PathLike, lr: float) -> Diverged:
        return Diverged(self.quantity, self.where, epoch=epoch, run_dir=run_dir, lr=lr)


def check_finite(what: str, value: float) -> None:
    """Raise :class:`Diverged` unless ``value`` (a loss) is a finite number."""
    if not math.isfinite(value):
        raise Diverged(f"{what} is {value}")


def check_weights(nonfinite: list[str]) -> None:
    """Raise :class:`Diverged` when any weight tensor (named in ``nonfinite``) holds nan or inf: such
    weights are neither checkpointed nor published."""
    if nonfinite:
        names = ", ".join(nonfinite[:3]) + (", ..." if len(nonfinite) > 3 else "")
        many = len(nonfinite) != 1
        raise Diverged(f"{len(nonfinite)} weight tensor{'s hold' if many else ' holds'} nan or inf ({names})")


@contextlib.contextmanager
def epoch_context(epoch: int, run_dir: str | os.PathLike, lr: float):
    """A :class:`Diverged` raised inside names the epoch (1-based), the run folder and the learning rate."""
    try:
        yield
    except Diverged as err:
        raise err.during(epoch, run_dir, lr) from None


def epoch_line(row: dict, epochs: int) -> str:
    """The line both frameworks print after each finished epoch (one
    ``metrics.csv`` row): it stays on the terminal when the bars go."""
    return (f"epoch {row['epoch']}/{epochs}: train_loss {row['train_loss']:.4f} "
            f"top1 {row['train_top1']:.4f} | val_loss {row['val_loss']:.4f} "
            f"val_top1 {row['val_top1']:.4f} val_top5 {row['val_top5']:.4f} | "
            f"lr {row['lr']:g} | {row['seconds']:.1f} s")


def progress_bar(iterable=None, *, desc: str, total: int | None = None):
    """A transient tqdm bar (``leave=False``: it goes when it ends; :func:`epoch_line` stays)."""
    from tqdm import tqdm  # the `train` extra

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


__all__ = ["CHECKPOINTS", "FINAL_WEIGHTS", "METRICS", "Diverged", "RunConfig", "check_finite", "check_weights",
           "epoch_context", "epoch_line", "model_options", "prepare", "progress_bar", "read_config", "read_metrics",
           "reading_checkpoint", "start", "verify_checkpoint", "write_checkpoint", "write_metrics"]
