"""Top-k hits and the softmax's log, in numpy: the one scorer both frameworks' evaluations call.

Ranking is a stable sort of the scores, highest first, so tied scores rank the lower class index
first: the same count on every framework and device (``torch.topk`` leaves ties' order unspecified).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def topk_hits(scores, labels, ks: Sequence[int] = (1, 5)) -> tuple[int, ...]:
    """For each ``k`` in ``ks``, how many rows of ``scores`` (N, classes) rank their ``labels``
    entry among their ``k`` highest (k at most the number of classes counts every row)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"expected scores (N, classes) and N labels; found {scores.shape} and {labels.shape}")
    best = np.argsort(-scores, axis=1, kind="stable")[:, :max(ks)]
    hit = best == labels[:, None]
    return tuple(int(hit[:, :k].any(1).sum()) for k in ks)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """The log of the softmax over the last axis, without overflow."""
    m = x.max(axis=-1, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


__all__ = ["log_softmax", "topk_hits"]
