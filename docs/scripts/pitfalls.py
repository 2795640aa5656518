"""Measure what each porting pitfall costs, so the pitfalls page shows numbers, not warnings.

Every row runs the real code twice, once with the convention done wrong and once done right, and
reports the error relative to the output's scale (max |reference|), as ``parity.compare`` does.
Writes ``pitfalls.json`` and ``pitfalls.md`` (one snippet section per pitfall) into ``--out``.

    python docs/scripts/pitfalls.py --out docs/assets/generated
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's packages

import parity  # noqa: E402, F401  (first: keeps triton from crashing beside TensorFlow, parity/_triton.py)

import numpy as np  # noqa: E402

# Inputs at two scales: normalized images (std 1) and mean-subtracted raw pixels (std ~60), the
# scale the 2012 network was trained at. LocalResponseNorm only bites at the second.
SCALES = {"std 1": 1.0, "std 60": 60.0}


@dataclass
class Row:
    pitfall: str  # the section of the page it belongs to
    wrong: str
    right: str
    measured_on: str
    wrong_error: float | None  # max |a - b| / max |b|; None when the wrong way raises instead
    right_error: float | None
    outcome: str = ""  # what happens when the error is an exception, or a remark


def rel(reference, value) -> float:
    reference = np.asarray(reference, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    if reference.shape != value.shape:
        return float("inf")
    return float(np.max(np.abs(reference - value)) / np.max(np.abs(reference)))


def first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"


# --- the paper network: LRN, flatten order, 224 vs 227 ---------------------------------------------


def _paper():
    import alexnet_torch
    from parity import randomize_torch

    return randomize_torch(alexnet_torch.build("paper"), seed=0).eval()


def _logits(module, x):
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _keras_logits(model, x_nchw):
    import keras

    return keras.ops.convert_to_numpy(model(x_nchw.transpose(0, 2, 3, 1), training=False))


def lrn_rows(module, ported) -> list[Row]:
    """Each mistake at the LRN layer and on the logits; ``ported`` is the right Keras port."""
    import tensorflow as tf
    import torch

    import alexnet_keras
    from alexnet_spec import LRN_FLAVOURS
    from parity import random_batch

    p, q = LRN_FLAVOURS["caffe"], LRN_FLAVOURS["paper"]
    radius = (p.size - 1) // 2
    # (label, TF arguments as someone would write them or None, the same function as a torch LRN)
    mistakes = [
        ("`tf.nn.local_response_normalization(depth_radius=2, alpha=1e-4)`: alpha not divided by n",
         dict(depth_radius=radius, bias=p.k, alpha=p.alpha, beta=p.beta),
         dict(size=p.size, alpha=p.alpha * p.size, beta=p.beta, k=p.k)),
        ("`tf.nn.local_response_normalization(depth_radius=5)`: the window taken for the half-width",
         dict(depth_radius=p.size, bias=p.k, alpha=p.alpha / p.size, beta=p.beta),
         dict(size=2 * p.size + 1, alpha=p.alpha / p.size * (2 * p.size + 1), beta=p.beta, k=p.k)),
        ("`lrn='paper'` (k=2, alpha undivided) where the document's k=1 was meant", None,
         dict(size=q.size, alpha=q.alpha, beta=q.beta, k=q.k)),
    ]
    right = "`alexnet_keras.LocalResponseNormalization(5, 1e-4, 0.75, 1.0)`; logits: the ported Keras model"
    rows = []
    for scale_name, scale in SCALES.items():
        x = random_batch((2, 3, 227, 227), seed=1, scale=scale)
        with torch.no_grad():
            act = module.features[:2](torch.from_numpy(x)).numpy()  # conv1 + ReLU: what LRN sees
        right_layer = torch.nn.functional.local_response_norm(torch.from_numpy(act).double(), p.size, p.alpha, p.beta, p.k).numpy()
        ours = alexnet_keras.LocalResponseNormalization(p.size, p.alpha, p.beta, p.k)(act.transpose(0, 2, 3, 1))
        ours = np.asarray(ours).transpose(0, 3, 1, 2)
        good = _logits(module, x)
        keras_logits = _keras_logits(ported, x)
        for label, tf_args, as_torch in mistakes:
            twin = torch.nn.functional.local_response_norm(torch.from_numpy(act).double(), **as_torch).numpy()
            if tf_args is not None:  # measure TensorFlow's own op, and check the torch twin is the same function
                wrong_layer = tf.nn.local_response_normalization(act.transpose(0, 2, 3, 1), **tf_args).numpy().transpose(0, 3, 1, 2)
                assert rel(twin, wrong_layer) < 1e-5, "the torch twin of the TF mistake is not the same function"
            else:
                wrong_layer = twin
            with swapped_lrn(module, torch.nn.LocalResponseNorm(**as_torch)):
                bad = _logits(module, x)
            rows.append(Row("lrn", label, right, f"LRN, {scale_name}", rel(right_layer, wrong_layer), rel(right_layer, ours)))
            rows.append(Row("lrn", label, right, f"logits, {scale_name}", rel(good, bad), rel(good, keras_logits)))
    return rows


@contextlib.contextmanager
def swapped_lrn(module, norm):
    """``module`` with every LocalResponseNorm replaced by ``norm`` (no copy of 61M weights)."""
    import torch

    saved = {i: m for i, m in enumerate(module.features) if isinstance(m, torch.nn.LocalResponseNorm)}
    try:
        for i in saved:
            module.features[i] = norm
        yield module
    finally:
        for i, m in saved.items():
            module.features[i] = m


def flatten_rows(module, ported) -> list[Row]:
    """The port table without fc1's ``flatten_from`` against the real table (``ported``)."""
    import alexnet_keras
    from alexnet_keras.weights import expected_shapes, set_layer_weights
    from alexnet_spec.port import torch_to_keras
    from alexnet_spec.tables import get_table
    from parity import random_batch
    from parity.models import torch_state

    x = random_batch((2, 3, 227, 227), seed=1)
    good = _logits(module, x)
    table = get_table("paper")
    naive = replace(table, entries=tuple(replace(e, flatten_from=None) for e in table.entries))
    model = alexnet_keras.build("paper")
    set_layer_weights(model, torch_to_keras(naive, torch_state(module), expected_shapes(model)))
    return [Row("flatten", "fc1 kernel = weight.T (no CHW -> HWC permutation)",
                "reshape (out, C, H, W) -> transpose (out, H, W, C), then .T", "logits",
                rel(good, _keras_logits(model, x)), rel(good, _keras_logits(ported, x)),
                "shapes fit, so nothing complains")]


def input_size_rows(module) -> list[Row]:
    import torch

    rows = []
    with torch.no_grad():
        for side in (224, 227):
            fmap = module.features(torch.zeros(1, 3, side, side))
            try:
                module.classifier(torch.flatten(fmap, 1))
                outcome = "runs"
            except RuntimeError as err:
                outcome = first_line(err)
            rows.append((side, tuple(fmap.shape[1:]), outcome))
    (s0, f0, o0), (s1, f1, o1) = rows
    return [Row("size", f"{s0}x{s0} input", f"{s1}x{s1} input", "feature map before fc1", None, None,
                f"{s0}: {f0[0]}x{f0[1]}x{f0[2]} = {int(np.prod(f0))} features, {o0}; "
                f"{s1}: {f1[0]}x{f1[1]}x{f1[2]} = {int(np.prod(f1))} features, {o1}")]


def nan_rows(module, ported) -> list[Row]:
    """One NaN pixel into the same weights in both frameworks: what reaches the logits."""
    from parity.randomize import random_batch

    x = random_batch((1, 3, 227, 227), seed=5)
    clean_t, clean_k = _logits(module, x), _keras_logits(ported, x)
    x[0, 1, 113, 113] = np.nan
    nan_t, nan_k = _logits(module, x), _keras_logits(ported, x)

    def said(logits, clean):
        bad = int((~np.isfinite(logits)).sum())
        if bad:
            return f"{bad} of {logits.size} logits NaN"
        return f"all {logits.size} logits finite, argmax {int(logits.argmax())} (clean input: {int(clean.argmax())})"

    return [Row("nan", "one NaN pixel, PyTorch", "finite input", "logits of the paper network", None,
                rel(clean_t, clean_k), said(nan_t, clean_t)),
            Row("nan", "one NaN pixel, Keras (TensorFlow)", "finite input", "logits of the paper network", None,
                rel(clean_t, clean_k), said(nan_k, clean_k))]


# --- SAME padding at stride 4 (the Keras 'cifar' network's conv1) -----------------------------------


def same_padding_rows() -> list[Row]:
    """conv1 of the source document's Keras network (the 'cifar' variant): padding='same' at
    stride 4 on its 32x32x3 input, against what a PyTorch port might write instead."""
    import keras
    import torch

    from alexnet_spec import get_spec
    from alexnet_torch.padding import same_padding

    spec = get_spec("cifar")
    conv1 = spec.convs[0]
    size, stride = spec.input_size, conv1.stride
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, size, size, spec.channels)).astype(np.float32)
    conv = keras.layers.Conv2D(conv1.filters, conv1.kernel, strides=stride, padding="same")
    ref = keras.ops.convert_to_numpy(conv(x)).transpose(0, 3, 1, 2)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    w = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    b = torch.from_numpy(bias)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    F = torch.nn.functional
    # TF SAME at 32, kernel 11, stride 4: total padding 7, split 3 before and 4 after.
    before, after = same_padding(size, conv1.kernel, stride)
    with torch.no_grad():
        symmetric = F.conv2d(xt, w, b, stride=stride, padding=after).numpy()
        tf_same = F.conv2d(F.pad(xt, (before, after, before, after)), w, b, stride=stride).numpy()
        try:
            F.conv2d(xt, w, b, stride=stride, padding="same")
            refused = "runs"
        except RuntimeError as err:
            refused = first_line(err)
    return [
        Row("same", f"torch padding={after} (symmetric; same 8x8 output shape)",
            f"F.pad(x, ({before}, {after}, {before}, {after})) then padding=0", "conv1 output, 32x32 input",
            rel(ref, symmetric), rel(ref, tf_same), "the map is shifted by one pixel"),
        Row("same", "torch padding='same' at stride 4", "explicit asymmetric F.pad", "-", None, None, refused),
    ]


# --- BatchNorm: epsilon, momentum, variance ---------------------------------------------------------


def batchnorm_rows() -> list[Row]:
    import keras
    import torch

    rng = np.random.default_rng(0)
    c = 16
    x = rng.standard_normal((8, c, 4, 4)).astype(np.float32)
    rows = []
    for label, low, high in (("running_var in [0.5, 1.5]", 0.5, 1.5), ("running_var in [1e-3, 1e-2]", 1e-3, 1e-2)):
        bn = torch.nn.BatchNorm2d(c).eval()
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c)))
            bn.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, c)))
            bn.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, c)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(low, high, c)))
            ref = bn(torch.from_numpy(x)).numpy()
        stats = [t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
        outs = []
        for eps in (1e-3, bn.eps):  # Keras's default, then PyTorch's carried over
            layer = keras.layers.BatchNormalization(epsilon=eps)
            layer.build((None, 4, 4, c))
            layer.set_weights(stats)
            outs.append(keras.ops.convert_to_numpy(layer(x.transpose(0, 2, 3, 1), training=False)).transpose(0, 3, 1, 2))
        rows.append(Row("batchnorm", "Keras's default epsilon=1e-3 (PyTorch: 1e-5)", "epsilon=1e-5 carried over",
                        f"BatchNorm output (eval), {label}", rel(ref, outs[0]), rel(ref, outs[1])))

    steps, batch = 20, (8, c, 2, 2)
    n = batch[0] * batch[2] * batch[3]
    batches = [rng.standard_normal(batch).astype(np.float32) * 2 + 1 for _ in range(steps)]
    bn = torch.nn.BatchNorm2d(c, momentum=0.1).train()
    for b in batches:
        bn(torch.from_numpy(b))
    moved = {}
    for momentum in (0.1, 0.9):  # the number copied over, then 1 - 0.1
        layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-5)
        layer.build((None, 2, 2, c))
        for b in batches:
            layer(b.transpose(0, 2, 3, 1), training=True)
        moved[momentum] = [keras.ops.convert_to_numpy(v) for v in (layer.moving_mean, layer.moving_variance)]
    mean, var = bn.running_mean.numpy(), bn.running_var.numpy()
    rows.append(Row("batchnorm", "Keras momentum=0.1 copied from PyTorch", "Keras momentum=0.9 (= 1 - 0.1)",
                    f"moving mean after {steps} training steps", rel(mean, moved[0.1][0]), rel(mean, moved[0.9][0])))
    rows.append(Row("batchnorm", "assume both keep the same variance", "no Keras setting: a custom layer",
                    f"moving variance after {steps} steps, {n} values per channel", rel(var, moved[0.9][1]), None,
                    f"PyTorch keeps the unbiased batch variance (x {n}/{n - 1}), Keras the biased one"))
    return rows


# --- grouped convolution on CPU ---------------------------------------------------------------------


def grouped_rows(module) -> list[Row]:
    """The paper network's conv5 (grouped, 3x3, padding 1), on the map size it sees there."""
    import keras
    import tensorflow as tf
    import torch

    from alexnet_spec import get_spec

    convs = get_spec("paper").convs
    conv5 = convs[4]
    assert conv5.groups == 2 and 2 * conv5.padding == conv5.kernel - 1 and conv5.stride == 1
    with torch.no_grad():  # the input conv5 sees: everything before it in the torch model
        before = [m for m in module.features if isinstance(m, torch.nn.Conv2d)][4]
        index = list(module.features).index(before)
        side = module.features[:index](torch.zeros(1, 3, 227, 227)).shape[-1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, side, side, convs[3].filters)).astype(np.float32)
    conv = keras.layers.Conv2D(conv5.filters, conv5.kernel, padding="same", groups=conv5.groups)
    keras_eager = keras.ops.convert_to_numpy(conv(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(
            torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()),
            torch.from_numpy(bias), padding=conv5.padding, groups=conv5.groups,
        ).numpy().transpose(0, 2, 3, 1)
    model = keras.Sequential([keras.Input(x.shape[1:]), conv])
    paths = {
        "keras Conv2D(groups=2), eager": lambda: keras_eager,
        "keras Model.predict": lambda: model.predict(x, verbose=0),
        "tf.nn.conv2d, graph (tf.function, no XLA)": lambda: tf.function(lambda a: tf.nn.conv2d(a, kernel, 1, "SAME") + bias)(x).numpy(),
    }
    rows = []
    for label, run in paths.items():
        try:
            rows.append(Row("grouped", "-", label, "paper conv5 (groups=2) on CPU", None, rel(ref, run()), "works here"))
        except Exception as err:  # record the refusal, whatever TensorFlow raises
            rows.append(Row("grouped", "-", label, "paper conv5 (groups=2) on CPU", None, None, first_line(err)))
    # The classic workaround splits into two towers; interleaving the channels instead of splitting
    # them into contiguous halves is the mistake (both frameworks split contiguously).
    half, cin = kernel.shape[-1] // 2, x.shape[-1]

    def towers(channels_of):
        parts = [tf.nn.conv2d(tf.gather(x, channels_of(g), axis=-1), kernel[..., g * half:(g + 1) * half], 1, "SAME")
                 for g in range(2)]
        return (tf.concat(parts, -1) + bias).numpy()

    contiguous = towers(lambda g: np.arange(g * cin // 2, (g + 1) * cin // 2))
    interleaved = towers(lambda g: np.arange(g, cin, 2))
    rows.append(Row("grouped", "two towers fed interleaved channels (x[..., g::2])",
                    "two towers fed contiguous halves", "paper conv5 (groups=2) on CPU",
                    rel(ref, interleaved), rel(ref, contiguous)))
    return rows


# --- output -----------------------------------------------------------------------------------------

SECTIONS = {
    "lrn": "LocalResponseNorm: alpha, window, k",
    "flatten": "Flatten order",
    "same": "TF SAME padding at stride 4",
    "batchnorm": "BatchNorm: epsilon, momentum, variance",
    "size": "224 vs 227",
    "grouped": "Grouped convolution on CPU",
    "nan": "NaN input",
}


def write_text(path: Path, text: str) -> None:
    """Generated files are meant to be replaced, but never left half-written."""
    from alexnet_spec.files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1e}"


PIVOTED = {"lrn"}  # one row per mistake, one column per measurement


def pivoted(rows) -> list[str]:
    rows = list(rows)
    columns = list(dict.fromkeys(r.measured_on for r in rows))
    wrongs = list(dict.fromkeys(r.wrong for r in rows))
    cell = {(r.wrong, r.measured_on): r for r in rows}
    out = ["| error of | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for wrong in wrongs:
        out.append(f"| {wrong} | " + " | ".join(fmt(cell[wrong, c].wrong_error) for c in columns) + " |")
    out.append(f"| **done right**: {rows[0].right} | " + " | ".join(fmt(cell[wrongs[0], c].right_error) for c in columns) + " |")
    return out


def to_markdown(rows: list[Row], versions: str) -> str:
    out = [f"<!-- generated by docs/scripts/pitfalls.py ({versions}); do not edit -->"]
    for key, title in SECTIONS.items():
        out.append(f"<!-- --8<-- [start:{key}] -->")
        if key in PIVOTED:
            out += pivoted(r for r in rows if r.pitfall == key)
            out.append(f"<!-- --8<-- [end:{key}] -->")
            continue
        out.append("| done wrong | done right | measured on | error wrong | error right | note |")
        out.append("| --- | --- | --- | ---: | ---: | --- |")
        for r in (r for r in rows if r.pitfall == key):
            cells = [r.wrong, r.right, r.measured_on, fmt(r.wrong_error), fmt(r.right_error), r.outcome]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append(f"<!-- --8<-- [end:{key}] -->")
    out.append("")
    return "\n".join(out)


def measure() -> list[Row]:
    import keras
    import torch

    from parity import torch_to_keras

    torch.manual_seed(0)
    keras.utils.set_random_seed(0)  # Keras initializes the layers built here: same numbers every run
    module = _paper()
    ported = torch_to_keras(module)
    return lrn_rows(module, ported) + flatten_rows(module, ported) + input_size_rows(module) + nan_rows(module, ported) \
        + same_padding_rows() + batchnorm_rows() + grouped_rows(module)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "generated")
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf
    import torch

    versions = f"torch {torch.__version__}, tensorflow {tf.__version__}, keras {keras.__version__}"
    rows = measure()
    args.out.mkdir(parents=True, exist_ok=True)
    record = json.dumps({"versions": versions, "rows": [asdict(r) for r in rows]}, indent=1)
    write_text(args.out / "pitfalls.json", record)
    write_text(args.out / "pitfalls.md", to_markdown(rows, versions))
    print(f"wrote {args.out / 'pitfalls.md'} ({len(rows)} measurements)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
