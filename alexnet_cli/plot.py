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


# --8<-- [start:kernels]
def kernel_mosaic(weight, channels: str = "rgb"):
    """conv1's kernels (96, 3, 11, 11) as two mosaics, one per tower (the 48 kernels each of
    conv2's groups reads), each kernel scaled to 0..1 on its own: (2, rows*12-1, 8*12-1, 3)."""
    import numpy as np

    w = np.asarray(weight, np.float64)
    if w.ndim != 4 or w.shape[1] != 3 or w.shape[0] % 2:
        raise ValueError(f"expected conv1's kernels as (filters, 3, kh, kw) with an even filter count; found {w.shape}")
    if channels == "bgr":  # Caffe's bvlc_alexnet reads BGR: show its kernels in RGB
        w = w[:, ::-1]
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(w.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-12)
    tiles = ((w - lo) / span).transpose(0, 2, 3, 1)  # (n, kh, kw, 3) in 0..1
    n, kh, kw, _ = tiles.shape
    per_tower, cols = n // 2, 8
    rows = -(-per_tower // cols)
    out = np.ones((2, rows * (kh + 1) - 1, cols * (kw + 1) - 1, 3))
    for tower in range(2):
        for i in range(per_tower):
            r, c = divmod(i, cols)
            out[tower, r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = tiles[tower * per_tower + i]
    return out


def plot_kernels(weights: str | os.PathLike, out: str | os.PathLike, *, channels: str = "auto",
                 variant: str | None = None, overwrite: bool = False) -> Path:
    """The paper's Figure 3 from any weight file: conv1's kernels, the 48 of each tower in its own
    block. ``channels``: ``bgr`` for Caffe's weights (auto: a ``.caffemodel`` is BGR), else ``rgb``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from parity import files
    from alexnet_spec.tables import get_table

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; refusing to overwrite it. Pass --force or choose another --out.")
    if channels == "auto":
        channels = "bgr" if str(weights).endswith(files.CAFFE_FORMAT) else "rgb"
    record = files.read(weights, variant)
    mosaic = kernel_mosaic(record.state[get_table(record.variant).entries[0].torch_keys()[0]], channels)
    fig, axes = plt.subplots(2, 1, figsize=(6, 8), constrained_layout=True)
    for tower, ax in enumerate(axes):
        ax.imshow(mosaic[tower], interpolation="nearest")
        ax.set_title(f"tower {tower + 1}: conv1 kernels {48 * tower}-{48 * tower + 47}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"conv1 of {Path(weights).name} ({record.variant}, {channels.upper()} weights shown as RGB)", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    data = buffer.getvalue()
    return atomic_write(out, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)
# --8<-- [end:kernels]


__all__ = ["kernel_mosaic", "plot_kernels", "plot_runs"]
