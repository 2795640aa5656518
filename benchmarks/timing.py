"""Wall-clock timing of a callable: warm-up calls first (compilation, allocation, thread start),
then repeated calls until both a count and a duration are reached; the median is reported because
this machine is shared and noisy."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    warmup: int = 2
    min_reps: int = 5
    min_seconds: float = 2.0
    max_seconds: float = 20.0


FULL = Budget()
QUICK = Budget(warmup=1, min_reps=3, min_seconds=0.5, max_seconds=6.0)
SMOKE = Budget(warmup=1, min_reps=1, min_seconds=0.0, max_seconds=0.0)


def seconds_per_call(fn, budget: Budget = FULL) -> dict:
    """``{"median": s, "best": s, "reps": n}`` for one call of ``fn``."""
    for _ in range(budget.warmup):
        fn()
    times = []
    begin = time.perf_counter()
    while True:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - begin
        if (len(times) >= budget.min_reps and elapsed >= budget.min_seconds) or elapsed >= budget.max_seconds:
            break
    return {"median": statistics.median(times), "best": min(times), "reps": len(times)}


def paired_seconds(fn, reference, budget: Budget = FULL) -> dict:
    """Like :func:`seconds_per_call` for ``fn``, each call followed by one call of ``reference``.

    Load from other programs drifts over seconds; a ratio taken pair by pair compares ``fn`` and
    ``reference`` under the same load. Adds ``ratios``: reference time over ``fn`` time, per pair.
    """
    for _ in range(budget.warmup):
        fn()
    reference()
    times, ratios = [], []
    begin = time.perf_counter()
    while True:
        start = time.perf_counter()
        fn()
        middle = time.perf_counter()
        reference()
        end = time.perf_counter()
        times.append(middle - start)
        ratios.append((end - middle) / (middle - start))
        elapsed = end - begin
        if (len(times) >= budget.min_reps and elapsed >= budget.min_seconds) or elapsed >= budget.max_seconds:
            break
    return {"median": statistics.median(times), "best": min(times), "reps": len(times), "ratios": ratios}
