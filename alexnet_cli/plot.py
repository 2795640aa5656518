"""Loss and accuracy curves of training runs (their ``metrics.csv``), several runs in one PNG."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from alexnet_training import runs
from alexnet_spec.files import atomic_write


# One colour family per framework, so that both frameworks' runs from one start read as two groups.
FAMILIES = {"torch": ("#1f5fa8", "#5b9bd5", "#0b2f5c", "#9cc3e6"),
            "keras": ("#d9531e", "#f28e2b", "#8c2d04", "#fdbf6f"),
            None: ("#4d4d4d", "#2ca02c", "#9467bd", "#8c564b")}
TRAIN_STYLE, VAL_STYLE = "-", "--"


def run_labels(run_dirs: list[str | os.PathLike]) -> list[tuple[str | None, str]]:
    """``(framework, label)`` per run: its framework and variant from ``run.json``, and its folder's
    name only where that says more (not ``torch`` in "torch cifar"), or tells two runs apart."""
    described = []
    for run_dir in run_dirs:
        path = Path(run_dir).resolve()
        try:
            config = runs.read_config(run_dir)
        except ValueError:  # metrics without run.json: the folder is all we know
            described.append((None, "", path))
            continue
        described.append((config.framework, f"{config.framework} {config.variant}", path))
    labels = []
    for framework, label, path in described:
        twins = [p for _, other, p in described if other == label and p != path]
        name = _distinct_name(path, twins)
        if twins or not label or not _says_nothing_new(name, label):
            label = f"{label} ({name})" if label else name
        labels.append((framework, label))
    return labels


def _says_nothing_new(name: str, label: str) -> bool:
    """True for a folder named after what the label already says ("torch", "keras-cifar", "run")."""
    words = set(re.split(r"[-_.\s/]+", name.lower())) - {""}
    return words <= set(label.lower().split()) | {"run", "runs"}


def _distinct_name(path: Path, others: list[Path]) -> str:
    """The folder's name, with as many parent folders as it takes to differ from ``others``."""
    for depth in range(1, len(path.parts) + 1):
        name = "/".join(path.parts[-depth:])
        if all("/".join(o.parts[-depth:]) != name for o in others):
            return name
    return str(path)


def figure_runs(run_dirs: list[str | os.PathLike], *, title: str = ""):
    """The curves of ``run_dirs`` as a matplotlib Figure. Left: loss; right: top-1. Each run one
    colour (its framework's family), training solid, validation dashed; whole epochs on the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    loaded = []
    for run_dir in run_dirs:
        rows = runs.read_metrics(run_dir)  # refuses a folder that is not a run, before drawing
        if not rows:
            raise ValueError(f"{run_dir}/metrics.csv has no epochs yet; nothing to plot")
        loaded.append(rows)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    used = {}
    for (framework, label), rows in zip(run_labels(run_dirs), loaded):
        family = FAMILIES.get(framework, FAMILIES[None])
        color = family[used.get(framework, 0) % len(family)]
        used[framework] = used.get(framework, 0) + 1
        epochs = [r["epoch"] for r in rows]
        for ax, key, scale in ((ax_loss, "loss", 1), (ax_acc, "top1", 100)):
            ax.plot(epochs, [scale * r[f"train_{key}"] for r in rows], TRAIN_STYLE, marker="o", markersize=3,
                    color=color, label=label)
            ax.plot(epochs, [scale * r[f"val_{key}"] for r in rows], VAL_STYLE, marker="o", markersize=3,
                    color=color, label=f"_{label} validation")  # one legend entry per run, below
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.6 and 2 rather than 6x10^-1 and 2x10^0
    low, high = ax_loss.get_ylim()
    ax_loss.yaxis.set_major_formatter(plain)
    if high >= 10 * low:  # across decades: label 2x and 5x as well, so more than one tick has a number
        ax_loss.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax_loss.yaxis.set_minor_formatter(plain if high < 1000 * low else NullFormatter())
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)")
    styles = [Line2D([], [], color="black", linestyle=TRAIN_STYLE, label="train"),
              Line2D([], [], color="black", linestyle=VAL_STYLE, label="validation")]
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one epoch: one tick
        ax.grid(alpha=0.3)
    ax_loss.legend(fontsize=7, title="run", title_fontsize=7)
    ax_acc.legend(handles=styles, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_runs(run_dirs: list[str | os.PathLike], out: str | os.PathLike, *, title: str = "",
              overwrite: bool = False) -> Path:
    """:func:`figure_runs` as a PNG at ``out`` (written atomically, never over a file unless
    ``overwrite``)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; refusing to overwrite it. Pass --force or choose another --out.")
    fig = figure_runs(run_dirs, title=title)
    import matplotlib.pyplot as plt

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


__all__ = ["figure_runs", "kernel_mosaic", "plot_kernels", "plot_runs", "run_labels"]
