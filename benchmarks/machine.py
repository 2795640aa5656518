"""What this machine can do, measured in the same run as the models: an fp32 sgemm, a large
copy, and the peak resident memory of a piece of work (Linux's VmHWM, reset before it)."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

SGEMM_N = 4096


def _median_seconds(fn, reps: int) -> float:
    fn()  # warm up: thread pools, page faults, kernel choice
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm(n: int = SGEMM_N):
    """``(call, flops)``: a zero-argument call running one ``n`` x ``n`` fp32 matrix product through
    torch (MKL), the peak the networks' convolutions and dense layers are measured against."""
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    out = torch.empty(n, n)
    return (lambda: torch.mm(a, b, out=out)), 2 * n**3


def sgemm_gflops(reps: int = 5, n: int = SGEMM_N) -> float:
    """GFLOP/s of :func:`sgemm`, the median of ``reps`` calls."""
    call, flops = sgemm(n)
    return flops / _median_seconds(call, reps) / 1e9


def copy_gbps(reps: int = 5, mib: int = 512) -> float:
    """GB/s of copying a ``mib`` MiB fp32 buffer (bytes read + bytes written): the bandwidth a
    memory-bound network (reading all its weights once per batch) is measured against."""
    import torch

    src = torch.rand(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    seconds = _median_seconds(lambda: dst.copy_(src), reps)
    return 2 * src.numel() * 4 / seconds / 1e9


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@contextmanager
def peak_memory():
    """Yields a dict whose ``"mib"`` is, afterwards, the peak resident memory reached inside the
    block above the resident memory at its start (None where Linux's counters are missing)."""
    result: dict = {"mib": None}
    start = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        resettable = True
    except OSError:
        resettable = False
    try:
        yield result
    finally:
        peak = _status_kib("VmHWM")
        if resettable and start is not None and peak is not None:
            result["mib"] = max(0.0, (peak - start) / 1024)
