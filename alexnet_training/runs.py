"""A training run's folder, shared by both frameworks' loops (numpy and the standard library only).

``RUN_DIR/run.json``       what the run is (framework, variant, recipe, data, batch, seed, classes)
``RUN_DIR/metrics.csv``    one row per finished epoch, the columns of ``METRICS``
``RUN_DIR/checkpoint.*``   the last finished epoch: weights, optimizer, schedule, RNG state, rows
``RUN_DIR/model.safetensors``  the final weights, readable by ``alexnet-parity port/check``

Every file goes through ``alexnet_spec.files.atomic_write``: a kill leaves the previous complete
version, never half a file. The checkpoint holds the metrics rows too, so ``--resume`` rewrites
``metrics.csv`` from it: a kill between the two writes cannot leave them disagreeing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from alexnet_spec.files import atomic_write

METRICS = ("epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "seconds")
RUN_FILE, METRICS_FILE, FINAL_WEIGHTS = "run.json", "metrics.csv", "model.safetensors"
CHECKPOINTS = {"torch": "checkpoint.pt", "keras": "checkpoint.npz"}
# what a run may change when resumed: how long it goes on, and where its init file now lies (its
# sha256 must not change)
RESUMABLE = ("epochs", "init")


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
        for name in (RUN_FILE, METRICS_FILE, FINAL_WEIGHTS, FINAL_WEIGHTS + ".sha256", *CHECKPOINTS.values()):
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


__all__ = ["CHECKPOINTS", "FINAL_WEIGHTS", "METRICS", "RunConfig", "model_options", "prepare", "read_config",
           "read_metrics", "start", "write_metrics"]
