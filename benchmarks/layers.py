"""``python -m benchmarks.layers``: PyTorch's own modules against ``alexnet_torch.layers`` at
AlexNet's shapes, alternated call by call in one process: ``nn.LocalResponseNorm`` at the two LRN
maps (and the block size ours fixes), ``nn.Linear`` on the three dense layers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from alexnet_torch import layers
from alexnet_torch.layers import Linear, LocalResponseNorm

LRN_MAPS = {"conv1 (96 x 55 x 55)": (96, 55), "conv2 (256 x 27 x 27)": (256, 27)}
DENSE = [(9216, 4096), (4096, 4096), (4096, 1000)]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(candidates: dict, rounds: int) -> dict:
    """Median seconds of each zero-argument callable, calling them in turn each round."""
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name].append(_seconds(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(title: str, medians: dict, baseline: str) -> None:
    print(title)
    for name, t in medians.items():
        print(f"  {name:40s} {t * 1e3:7.1f} ms  {medians[baseline] / t:5.2f}x torch's")


def _lrn(block: int, inplace: bool):
    module = LocalResponseNorm(5, 1e-4, 0.75, 1.0, inplace=inplace)

    def run(x):
        saved, layers.BLOCK_ELEMENTS = layers.BLOCK_ELEMENTS, block
        try:
            return module(x)
        finally:
            layers.BLOCK_ELEMENTS = saved
    return run


def bench_lrn(batch: int, rounds: int) -> None:
    theirs = nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    for label, (c, hw) in LRN_MAPS.items():
        x = torch.randn(batch, c, hw, hw).relu_().contiguous(memory_format=torch.channels_last)
        work = x.clone()  # the in-place candidates' input: its values drift, the cost does not
        candidates = {"torch nn.LocalResponseNorm": lambda: theirs(x)}
        for block in (1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22):
            candidates[f"ours inplace=True, block 2**{block.bit_length() - 1}"] = lambda f=_lrn(block, True): f(work)
        candidates["ours inplace=False (a new output)"] = lambda f=_lrn(layers.BLOCK_ELEMENTS, False): f(x)
        medians = alternate(candidates, rounds)
        report(f"LocalResponseNorm at {label}, batch {batch}, channels_last, median of {rounds} rounds:",
               medians, "torch nn.LocalResponseNorm")


def bench_linear(batch: int, rounds: int) -> None:
    theirs = nn.Sequential(*(nn.Linear(i, o) for i, o in DENSE))
    ours = nn.Sequential(*(Linear.replacing(m) for m in theirs))
    x = torch.randn(batch, DENSE[0][0])
    medians = alternate({"torch nn.Linear": lambda: theirs(x), "ours Linear": lambda: ours(x)}, rounds)
    report(f"The three dense layers, batch {batch}, median of {rounds} rounds:", medians, "torch nn.Linear")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    with torch.inference_mode():
        bench_linear(args.batch, args.rounds)
        bench_lrn(args.batch, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
