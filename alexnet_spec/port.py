"""The one port engine: PyTorch state_dict <-> Keras weights, both as numpy, driven by a table.

Nothing here imports a framework, so a Keras-only install can read weights kept in PyTorch's
layout (the ``.safetensors`` exchange format) and a PyTorch-only install can read Keras's.
A port is all or nothing: missing, unexpected and mismatched weights are reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from alexnet_spec.tables import Entry, PortTable, all_tables

KerasWeights = Mapping[str, Sequence[np.ndarray]]  # layer name -> weights in Keras order


@dataclass
class PortReport:
    """What a port found wrong, by name (the manner of HF transformers' load report)."""

    variant: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # name, expected, found

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"weights do not fit the {self.variant!r} AlexNet:"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        for name, expected, found in self.mismatched:
            lines.append(f"  shape mismatch {name}: expected {expected}, found {found}")
        lines.append(
            "  Nothing was ported. Check that the weights come from this variant (and num_classes), "
            "or pass the variant they were saved from."
        )
        return "\n".join(lines)


class PortError(ValueError):
    """A port refused: the report says which weights are missing, unexpected or mismatched."""

    def __init__(self, report: PortReport):
        super().__init__(str(report))
        self.report = report


# --- layout changes, one pair per kind of weight ---------------------------------------------


# --8<-- [start:to-keras]
def _to_keras(entry: Entry, index: int, a: np.ndarray) -> np.ndarray:
    if index == 0 and entry.kind == "conv":  # (out, in/groups, kh, kw) -> (kh, kw, in/groups, out)
        return a.transpose(2, 3, 1, 0)
    if index == 0 and entry.kind == "dense":  # (out, in) -> (in, out), input axis CHW -> HWC
        if entry.flatten_from is not None:
            c, h, w = entry.flatten_from
            a = a.reshape(a.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1)
        return a.T
    return a
# --8<-- [end:to-keras]


def _to_torch(entry: Entry, index: int, a: np.ndarray) -> np.ndarray:
    if index == 0 and entry.kind == "conv":
        return a.transpose(3, 2, 0, 1)
    if index == 0 and entry.kind == "dense":
        a = a.T
        if entry.flatten_from is not None:
            c, h, w = entry.flatten_from
            a = a.reshape(a.shape[0], h, w, c).transpose(0, 3, 1, 2).reshape(a.shape[0], -1)
        return a
    return a


def _keras_shape(entry: Entry, index: int, torch_shape: tuple) -> tuple:
    if index == 0 and entry.kind == "conv":
        o, i, kh, kw = torch_shape
        return (kh, kw, i, o)
    if index == 0 and entry.kind == "dense":
        return tuple(reversed(torch_shape))
    return tuple(torch_shape)


def _torch_shape(entry: Entry, index: int, keras_shape: tuple) -> tuple:
    if index == 0 and entry.kind == "conv":
        kh, kw, i, o = keras_shape
        return (o, i, kh, kw)
    if index == 0 and entry.kind == "dense":
        return tuple(reversed(keras_shape))
    return tuple(keras_shape)


def check_torch_state(table: PortTable, state: Mapping[str, np.ndarray], expected: Mapping[str, tuple] | None = None) -> None:
    """Raise PortError naming every missing, unexpected and (given ``expected`` torch shapes)
    mismatched weight of a torch-layout state_dict; return quietly when all fit."""
    report = PortReport(table.variant)
    allowed = set(table.torch_keys()) | set(table.torch_only_keys())
    report.missing = [k for k in table.torch_keys() if k not in state]
    report.unexpected = [k for k in state if k not in allowed]
    for key in table.torch_keys():
        if key in state and expected is not None and key in expected:
            if tuple(np.shape(state[key])) != tuple(expected[key]):
                report.mismatched.append((key, tuple(expected[key]), tuple(np.shape(state[key]))))
    if not report.ok:
        raise PortError(report)


def torch_to_keras(
    table: PortTable,
    state: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple] | None = None,
) -> dict[str, list[np.ndarray]]:
    """A torch-layout state_dict to Keras weights per layer.

    ``expected`` maps ``layer/weight`` names to the target model's Keras shapes; every weight is
    checked against it (and reported in PyTorch's names and shapes) before anything is converted.
    """
    expected_torch = None
    if expected is not None:
        expected_torch = {
            key: _torch_shape(entry, i, tuple(expected[name]))
            for entry in table.entries
            for i, (key, name) in enumerate(zip(entry.torch_keys(), entry.keras_names()))
            if name in expected
        }
    check_torch_state(table, state, expected_torch)
    return {
        entry.keras: [
            np.ascontiguousarray(_to_keras(entry, i, np.asarray(state[k])))
            for i, k in enumerate(entry.torch_keys())
        ]
        for entry in table.entries
    }


def keras_to_torch(
    table: PortTable,
    weights: KerasWeights,
    expected: Mapping[str, tuple] | None = None,
) -> dict[str, np.ndarray]:
    """Keras weights per layer to a torch-layout state_dict (torch-only buffers left out).

    ``expected`` maps state_dict keys to the target module's shapes; mismatches are reported in
    Keras's names and shapes.
    """
    report = PortReport(table.variant)
    layers = set(table.keras_layers())
    report.unexpected = [n for n, w in weights.items() if n not in layers and len(w)]
    for entry in table.entries:
        got = weights.get(entry.keras)
        names = entry.keras_names()
        if got is None:
            report.missing.extend(names)
            continue
        if len(got) != len(names):
            report.mismatched.append((entry.keras, (len(names), "weights"), (len(got), "weights")))
            continue
        for i, (key, name) in enumerate(zip(entry.torch_keys(), names)):
            if expected is not None and key in expected:
                want = _keras_shape(entry, i, tuple(expected[key]))
                if tuple(np.shape(got[i])) != want:
                    report.mismatched.append((name, want, tuple(np.shape(got[i]))))
    if not report.ok:
        raise PortError(report)
    return {
        key: np.ascontiguousarray(_to_torch(entry, i, np.asarray(weights[entry.keras][i])))
        for entry in table.entries
        for i, key in enumerate(entry.torch_keys())
    }


def infer_variant(torch_keys=None, keras_layers=None) -> str:
    """The variant whose table names these weights (torch keys or Keras layer names).

    An exact match wins; otherwise the one table that covers most of the names, so that the port
    that follows can report precisely what is missing or unexpected. Nothing close: a clear error.
    """
    if (torch_keys is None) == (keras_layers is None):
        raise TypeError("give torch_keys or keras_layers")
    given = set(torch_keys if torch_keys is not None else keras_layers)
    scored = []
    for table in all_tables():
        if torch_keys is not None:
            need, allowed = set(table.torch_keys()), set(table.torch_keys()) | set(table.torch_only_keys())
        else:
            need = allowed = set(table.keras_layers())
        if need <= given <= allowed:
            return table.variant
        scored.append((len(need & given) / max(len(need | (given - allowed)), 1), table.variant))
    scored.sort(reverse=True)
    if scored and scored[0][0] >= 0.5 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    what = "state_dict keys" if torch_keys is not None else "Keras layers with weights"
    raise ValueError(
        f"cannot tell which AlexNet variant these {len(given)} {what} belong to (e.g. "
        f"{sorted(given)[:3]}); known variants: {', '.join(t.variant for t in all_tables())}. "
        f"Pass the variant explicitly if the weights are from one of them."
    )


def num_classes_of_torch(table: PortTable, state: Mapping[str, np.ndarray]) -> int:
    return int(np.shape(state[table.output.torch_keys()[1]])[0])


def num_classes_of_keras(table: PortTable, weights: KerasWeights) -> int:
    return int(np.shape(weights[table.output.keras][1])[0])
