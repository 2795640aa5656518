"""Layer-by-layer comparison of a torch model and a Keras model on the same batch.

Every layer is compared in network order: its output shape in each framework and the largest
error, absolute and relative to that layer's output scale (max |torch output|). With
``reference=True`` each framework is also measured against a float64 run of the same weights,
which shows where the fp32 floor is.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from alexnet_spec.text import format_table

# fp32 parity of AlexNet sits near 1e-7 relative to the output scale (see docs/pitfalls); a
# convention bug (LRN alpha, flatten order, padding, BatchNorm eps) costs 1e-3 or more. This
# default leaves two orders of magnitude for rounding and none for a wrong convention.
DEFAULT_RTOL = 1e-5


@dataclass
class LayerRow:
    layer: str  # Keras layer name
    torch_module: str  # PyTorch module path
    kind: str
    torch_shape: tuple
    keras_shape: tuple
    params: int
    max_abs: float
    max_rel: float
    torch_vs_f64: float | None = None
    keras_vs_f64: float | None = None
    ok: bool = True


@dataclass
class ParityReport:
    variant: str
    rows: list[LayerRow]
    rtol: float
    batch: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def first_failure(self) -> LayerRow | None:
        return next((r for r in self.rows if not r.ok), None)

    @property
    def output(self) -> LayerRow:
        return self.rows[-1]

    def verdict(self) -> str:
        if self.ok:
            return (
                f"PASS: {self.variant}: all {len(self.rows)} layers agree; output max relative error "
                f"{self.output.max_rel:.2e} (tolerance {self.rtol:.0e})"
            )
        bad = self.first_failure
        return (
            f"FAIL: {self.variant}: first diverging layer {bad.layer} (torch {bad.torch_module}): "
            f"max abs {bad.max_abs:.3e}, max rel {bad.max_rel:.3e} (tolerance {self.rtol:.0e}), "
            f"shapes torch {bad.torch_shape} / keras {bad.keras_shape}"
        )

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "ok": self.ok,
            "rtol": self.rtol,
            "batch": self.batch,
            "verdict": self.verdict(),
            "notes": self.notes,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        ref = self.rows and self.rows[0].torch_vs_f64 is not None
        head = ["layer", "torch module", "torch shape", "keras shape", "params", "max abs", "max rel"]
        if ref:
            head += ["torch-f64", "keras-f64"]
        head.append("")
        body = []
        for r in self.rows:
            cells = [
                r.layer,
                r.torch_module,
                "x".join(map(str, r.torch_shape[1:])),
                "x".join(map(str, r.keras_shape[1:])),
                f"{r.params:,}" if r.params else "-",
                f"{r.max_abs:.2e}",
                f"{r.max_rel:.2e}",
            ]
            if ref:
                cells += [f"{r.torch_vs_f64:.2e}", f"{r.keras_vs_f64:.2e}"]
            cells.append("ok" if r.ok else "FAIL")
            body.append(cells)
        lines = format_table(head, body)
        lines += self.notes
        lines.append(self.verdict())
        return "\n".join(lines)


def _torch_layer_outputs(module, x: np.ndarray) -> list[tuple[str, str, int, np.ndarray]]:
    """(path, class name, params, output) for every leaf module, in the order they ran."""
    import torch

    records = []
    handles = []
    for name, sub in module.named_modules():
        if next(iter(sub.children()), None) is not None or not name:
            continue
        params = sum(p.numel() for p in sub.parameters(recurse=False))

        def hook(mod, args, out, name=name, params=params):
            # clone: the next in-place ReLU would otherwise overwrite what we recorded
            records.append((name, type(mod).__name__, params, out.detach().clone()))

        handles.append(sub.register_forward_hook(hook))
    try:
        dtype = next(module.parameters()).dtype
        with torch.inference_mode():
            module(torch.from_numpy(np.ascontiguousarray(x)).to(dtype))
    finally:
        for h in handles:
            h.remove()
    return [(n, k, p, o.double().numpy()) for n, k, p, o in records]


def _keras_layer_outputs(model, x_nchw: np.ndarray, training: bool = False) -> list[tuple[str, str, np.ndarray]]:
    import keras

    layers = [
        layer
        for layer in model.layers
        # layers PyTorch does inside another module (conv padding; the repeat of a 1-pixel map that
        # its adaptive pooling does, alexnet_keras/torchvision.py) or as a function (flatten)
        if not isinstance(layer, (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.ZeroPadding2D,
                                  keras.layers.UpSampling2D))
    ]
    probe = keras.Model(model.inputs[0], [layer.output for layer in layers])
    outs = probe(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)), training=training)
    result = []
    for layer, out in zip(layers, outs):
        out = keras.ops.convert_to_numpy(out).astype(np.float64)
        result.append((layer.name, type(layer).__name__, out))
    return result


def _to_nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def _errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if a.shape != b.shape:
        return math.inf, math.inf
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return max_abs, (max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf))


def check_finite(x: np.ndarray) -> None:
    """Refuse NaN or infinite input: the frameworks disagree on it by design (PyTorch carries NaN to
    the logits; Keras's max-pool and ReLU on TensorFlow/XLA drop it), so every layer would fail
    for a reason that is not a porting error."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"the input batch holds {int(bad.sum())} non-finite values (NaN or infinity; the first at "
            f"index {first}): parity is undefined there, since PyTorch propagates NaN and Keras's pooling "
            "may drop it. Pass finite input (e.g. np.nan_to_num(x)) or find where the NaN came from."
        )


def compare(
    torch_model, keras_model, x, *, rtol: float = DEFAULT_RTOL, reference: bool = False, variant=None, training: bool = False
) -> ParityReport:
    """Compare every layer of ``torch_model`` and ``keras_model`` on ``x``, a float32 NCHW batch.

    Both models are run in inference mode, or with ``training=True`` in training mode: BatchNorm
    normalizes with batch statistics and updates its moving statistics, as a training forward pass
    does (build the models with dropout 0, or dropout makes the two differ at random).
    ``reference=True`` adds each framework's error against a float64 run of the torch model (same
    weights), relative to each layer's scale.
    """
    from parity.models import keras_variant

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be an NCHW batch (N, C, H, W); found shape {x.shape}")
    check_finite(x)
    was_training = torch_model.training
    torch_model.train(training)
    try:
        f64 = None
        if reference:  # before the fp32 run, which in training mode moves the BatchNorm statistics
            f64 = _torch_layer_outputs(copy.deepcopy(torch_model).double(), x.astype(np.float64))
        t_out = _torch_layer_outputs(torch_model, x)
    finally:
        torch_model.train(was_training)
    k_out = _keras_layer_outputs(keras_model, x, training)
    if len(t_out) != len(k_out):
        raise ValueError(
            f"the two models do not line up: torch ran {len(t_out)} layers "
            f"({', '.join(n for n, *_ in t_out)}), Keras has {len(k_out)} "
            f"({', '.join(n for n, *_ in k_out)}); they are not the same architecture"
        )
    rows = []
    flat_from = None  # the last NHWC map, while the layers after Flatten have no weights yet
    for i, ((t_name, _, params, t), (k_name, k_kind, k)) in enumerate(zip(t_out, k_out)):
        if k.ndim == 4:
            flat_from = k.shape
        elif k.ndim == 2 and flat_from is not None and not params and k.shape[1] == math.prod(flat_from[1:]):
            # a weightless layer on the flattened map (torchvision's Dropout before fc1): Keras
            # flattened it as H,W,C, PyTorch as C,H,W
            k = k.reshape(flat_from).transpose(0, 3, 1, 2).reshape(k.shape[0], -1)
        if params:
            flat_from = None
        k = _to_nchw(k)
        max_abs, max_rel = _errors(t, k)
        row = LayerRow(
            layer=k_name,
            torch_module=t_name,
            kind=k_kind,
            torch_shape=tuple(t.shape),
            keras_shape=tuple(k.transpose(0, 2, 3, 1).shape) if k.ndim == 4 else tuple(k.shape),
            params=params,
            max_abs=max_abs,
            max_rel=max_rel,
            ok=max_rel <= rtol,
        )
        if f64 is not None:
            ref = f64[i][3]
            row.torch_vs_f64 = _errors(ref, t)[1]
            row.keras_vs_f64 = _errors(ref, k)[1]
        rows.append(row)
    return ParityReport(variant or keras_variant(keras_model), rows, rtol, batch=x.shape[0])
