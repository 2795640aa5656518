"""Starting a run from weights, the same way in both frameworks: a new last layer, a frozen part.

Both frameworks read these decisions from here (numpy only), in PyTorch's state_dict layout; the
weights then reach either framework through the port tables (``parity.files``), so a new head is
the same numbers in PyTorch and in Keras, not each framework's own initializer:

- :func:`new_head`: the layers whose size is the class count (the last dense layer, and in the
  ``cifar`` network the BatchNorm after it) replaced for another class count. Weights
  N(0, 0.01) (the paper's rule, section 5) from ``numpy.random.default_rng([seed, tag])``, biases
  0; a BatchNorm starts as both frameworks build one (gamma 1, beta 0, mean 0, variance 1).
- :func:`frozen_entries`: the layers ``--freeze features`` leaves untrained (every layer of the
  convolutional part, BatchNorm included), named in both frameworks by the port table.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from alexnet_spec.exchange import Exchange
from alexnet_spec.tables import Entry, get_table
from alexnet_spec.variants import PAPER_INIT_STD

HEAD_STD = PAPER_INIT_STD  # 0.01
_HEAD = 0x4EAD  # stream tag: the head's draws share no stream with another use of the seed
# what --freeze may name: the part of the network, by its state_dict prefix in PyTorch
FREEZABLE = {"features": "features."}


def head_entries(variant: str) -> tuple[Entry, ...]:
    """The layers whose shape is the class count: the last dense layer and all after it."""
    entries = get_table(variant).entries
    last_dense = max(i for i, e in enumerate(entries) if e.kind == "dense")
    return entries[last_dense:]


# --8<-- [start:new-head]
def new_head(record: Exchange, num_classes: int, seed: int) -> Exchange:
    """``record`` with its head (:func:`head_entries`) replaced by a new one of ``num_classes``
    classes, drawn from ``seed`` alone: one rule, so both frameworks start from the same numbers."""
    state = dict(record.state)
    rng = np.random.default_rng([seed, _HEAD])
    for entry in head_entries(record.variant):
        keys = entry.torch_keys()
        if entry.kind == "dense":
            fan_in = np.shape(state[keys[0]])[1]
            state[keys[0]] = rng.normal(0.0, HEAD_STD, size=(num_classes, fan_in)).astype(np.float32)
            state[keys[1]] = np.zeros(num_classes, np.float32)
        elif entry.kind == "batchnorm":  # gamma 1, beta 0, moving mean 0, moving variance 1
            for key, value in zip(keys, (1.0, 0.0, 0.0, 1.0)):
                state[key] = np.full(num_classes, value, np.float32)
            for key in entry.torch_only_keys():  # PyTorch's update counter starts again
                if key in state:
                    state[key] = np.zeros_like(state[key])
        else:
            raise ValueError(f"{record.variant}: a {entry.kind} layer ({entry.torch}) after the last dense layer "
                             "has no rule for a new head")
    return replace(record, state=state)
# --8<-- [end:new-head]


def frozen_entries(variant: str, part: str) -> tuple[Entry, ...]:
    """The layers of ``part`` (``"features"``: the convolutions and their BatchNorm) of ``variant``."""
    if part not in FREEZABLE:
        raise ValueError(f"--freeze takes {', '.join(FREEZABLE)}; found {part!r}")
    return tuple(e for e in get_table(variant).entries if e.torch.startswith(FREEZABLE[part]))


__all__ = ["FREEZABLE", "HEAD_STD", "frozen_entries", "head_entries", "new_head"]
