"""The results as a terminal table, JSON and a PNG chart (matplotlib, the ``bench`` extra)."""

from __future__ import annotations

import json

from alexnet_spec.files import atomic_write
from alexnet_spec.text import format_table

TARGET_SHARE = 0.70  # issue #6: the default path should reach this share of sgemm at batch 32
OPT_IN_TARGET_SHARE = 0.80  # issue #11: the opt-in fast paths of paper and torchvision


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(results: dict) -> str:
    """One line per variant, framework and mode: batch-1 latency, batch-32 throughput, shares."""
    head = ["variant", "framework", "mode", "b1 ms", "b1 img/s", "b32 img/s", "b32 GFLOP/s",
            "share of sgemm", "vs run's sgemm", "weights GB/s", "share of copy", "peak MiB"]
    body = []
    rows = results["rows"]
    keys = list(dict.fromkeys((r["variant"], r["framework"], r["mode"]) for r in rows))
    for variant, framework, mode in keys:
        by_batch = {r["batch"]: r for r in rows if (r["variant"], r["framework"], r["mode"]) == (variant, framework, mode)}
        one, big = by_batch.get(1), by_batch.get(max(by_batch))
        big = big if big is not one or len(by_batch) == 1 else None
        label = mode + (" *" if (big or one)["default"] else "")
        body.append([
            variant, framework, label,
            _cell(one and one["seconds"] * 1e3, ".1f"),
            _cell(one and one["images_per_s"], ".1f"),
            _cell(big and big["images_per_s"], ".1f"),
            _cell(big and big["gflops"], ".0f"),
            _cell(big and big["sgemm_share"], ".2f"),
            _cell(big and big["gflops"] / results["machine"]["sgemm_gflops"], ".2f"),
            _cell(big and big["weight_gbps"], ".2f"),
            _cell(big and big["copy_share"], ".2f"),
            _cell(big and big["peak_mib"], ".0f"),
        ])
    m = results["machine"]
    lines = format_table(head, body, right=range(3, len(head)))
    lines.append(
        f"* the user's default path. Share of sgemm: the median over calls of each call's GFLOP/s over "
        f"that of an sgemm run right after it; vs run's sgemm: over the best sgemm of the run; sgemm at "
        f"start, end: {', '.join(f'{g:.0f}' for g in m['sgemm_runs'])} GFLOP/s; copy {m['copy_gbps']:.1f} GB/s, "
        f"{m['threads']} threads, {m['cpu']}"
    )
    for variant, info in results["variants"].items():
        extra = ", ".join(f"{k} {v:.2f} s" for k, v in info.get("seconds", {}).items())
        lines.append(f"{variant}: {info['gflop_per_image']:.3f} GFLOP/image at {info['input_size']}, "
                     f"{info['params']:,} parameters" + (f"; {extra}" if extra else ""))
    return "\n".join(lines)


def write_json(results: dict, path, *, overwrite: bool) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")

    atomic_write(path, write, overwrite=overwrite)


def _bars(results: dict) -> dict[str, float]:
    big = max(r["batch"] for r in results["rows"])
    return {
        f"{r['variant']} {r['framework']} {r['mode']}" + (" *" if r["default"] else ""): r["sgemm_share"]
        for r in results["rows"]
        if r["batch"] == big
    }


def write_chart(results: dict, path, *, before: dict | None = None, overwrite: bool) -> None:
    """Share of the sgemm peak at the largest batch, one bar per variant, framework and mode;
    with ``before``, that run's bars beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    after = _bars(results)
    old = _bars(before) if before else {}
    labels = list(after)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.8))
    ys = range(len(labels))
    h = 0.4 if old else 0.7
    if old:
        ax.barh([y + h / 2 for y in ys], [old.get(k, 0.0) for k in labels], height=h, color="#bbbbbb", label="before")
    ax.barh([y - h / 2 if old else y for y in ys], [after[k] for k in labels], height=h, color="#3b6ea8",
            label="after" if old else None)
    ax.axvline(TARGET_SHARE, color="#c0392b", linestyle="--", linewidth=1, label=f"default-path target {TARGET_SHARE:.2f}")
    ax.axvline(OPT_IN_TARGET_SHARE, color="#8e44ad", linestyle=":", linewidth=1.2,
               label=f"opt-in target {OPT_IN_TARGET_SHARE:.2f}")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    big = max(r["batch"] for r in results["rows"])
    ax.set_xlabel(f"share of a 4096x4096 fp32 sgemm run after each call (median over calls), batch {big}")
    ax.set_title("AlexNet inference, fp32, CPU (* = the user's default path)", pad=28)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, fontsize="small", frameon=False)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), overwrite=overwrite)
    plt.close(fig)
