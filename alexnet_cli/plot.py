"""Loss and accuracy curves of training runs (their ``metrics.csv``), several runs in one PNG."""

from __future__ import annotations

import io
import os
from pathlib import Path

from alexnet_training import runs
from alexnet_spec.files import atomic_write


def plot_runs(run_dirs: list[str | os.PathLike], out: str | os.PathLike, *, title: str = "",
              overwrite: bool = False) -> Path:
    """Left: train (dashed) and validation (solid) loss; right: validation top-1 (solid) and
    train top-1 (dashed); one colour per run, labelled with its framework and folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; refusing to overwrite it. Pass --force or choose another --out.")
    loaded = []
    for run_dir in run_dirs:
        rows = runs.read_metrics(run_dir)  # refuses a folder that is not a run, before drawing
        if not rows:
            raise ValueError(f"{run_dir}/metrics.csv has no epochs yet; nothing to plot")
        try:
            config = runs.read_config(run_dir)
            label = f"{config.framework} {config.variant} ({Path(run_dir).name})"
        except ValueError:
            label = Path(run_dir).name
        loaded.append((label, rows))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, (label, rows) in enumerate(loaded):
        color = f"C{i}"
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], "--", color=color, label=f"{label} train")
        ax_loss.plot(epochs, [r["val_loss"] for r in rows], "-o", color=color, markersize=3, label=f"{label} val")
        ax_acc.plot(epochs, [100 * r["train_top1"] for r in rows], "--", color=color, label=f"{label} train")
        ax_acc.plot(epochs, [100 * r["val_top1"] for r in rows], "-o", color=color, markersize=3, label=f"{label} val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    data = buffer.getvalue()
    return atomic_write(out, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


__all__ = ["plot_runs"]
