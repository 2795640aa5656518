"""``python -m benchmarks.ab``: the paper variant's default path against its opt-in fast path,
alternated call by call in one process, so that the load other programs put on a shared machine
hits both alike. Prints the speed-up of each framework's fast path as a median of per-round ratios.

Before: the source document's class as written (NCHW, ``nn.LocalResponseNorm``), and Keras
``predict`` with Keras's own CPU default (``jit_compile=False``); these are also what
``alexnet_torch.build`` and ``alexnet_keras.build`` return. After: the same models through
``alexnet_torch.optimize`` and ``alexnet_keras.optimize``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import parity  # noqa: E402, F401  (first: keeps triton from crashing beside TensorFlow)
import torch  # noqa: E402


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)

    import alexnet_keras
    import alexnet_torch
    from parity import random_batch, randomize_torch, torch_to_keras
    from tests.reference import DocumentAlexNet

    before_torch = DocumentAlexNet().eval()
    randomize_torch(before_torch, seed=0)
    after_torch = alexnet_torch.optimize(alexnet_torch.build("paper").eval())
    after_torch.load_state_dict(before_torch.state_dict())
    before_keras = torch_to_keras(before_torch)
    before_keras.jit_compile = False  # Keras's "auto" on a machine without a GPU
    after_keras = alexnet_keras.optimize(before_keras)  # a new model with the same weights
    x = random_batch((args.batch, 3, 227, 227), seed=1)
    xt = torch.from_numpy(x)
    xk = x.transpose(0, 2, 3, 1).copy()

    def run_torch(model):
        with torch.inference_mode():
            model(xt)

    pairs = {
        "torch model(x), NCHW": (lambda: run_torch(before_torch), lambda: run_torch(after_torch)),
        "keras model.predict(x)": (lambda: before_keras.predict(xk, batch_size=args.batch, verbose=0),
                                   lambda: after_keras.predict(xk, batch_size=args.batch, verbose=0)),
    }
    for name, (before, after) in pairs.items():
        before(), after()  # warm up: compilation, allocation
        rounds = [(_seconds(before), _seconds(after)) for _ in range(args.rounds)]
        speedup = statistics.median(b / a for b, a in rounds)
        b = statistics.median(r[0] for r in rounds)
        a = statistics.median(r[1] for r in rounds)
        print(f"{name:24s} batch {args.batch}: before {args.batch / b:6.1f} img/s, after {args.batch / a:6.1f} "
              f"img/s, speed-up {speedup:.2f}x (median of {args.rounds} alternated rounds)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
