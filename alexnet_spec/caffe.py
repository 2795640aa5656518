"""Caffe's ``.caffemodel`` (and ``.binaryproto``) read with numpy alone: a small protobuf
wire-format reader that never executes anything from the file.

Only the fields needed to take the weights out are decoded; everything else is skipped by its wire
type. The field numbers are those of Caffe's schema (BVLC/caffe ``src/caffe/proto/caffe.proto``):

- ``NetParameter``: name = 1, layers = 2 (``V1LayerParameter``, the 2014 format of the model zoo's
  files), layer = 100 (``LayerParameter``, the current format).
- ``LayerParameter``: name = 1, type = 2 (a string), blobs = 7.
- ``V1LayerParameter``: name = 4, type = 5 (the ``LayerType`` enum, :data:`V1_TYPES`), blobs = 6.
- ``BlobProto``: num = 1, channels = 2, height = 3, width = 4 (the legacy 4-D dims: a dense
  layer's weight is 1x1xOUTxIN), data = 5 (float32, packed or not), shape = 7
  (``BlobShape``: dim = 1, int64), double_data = 8.

Every length and varint is checked against the end of its message, so a truncated or hostile file
is refused with one line that names the file and the byte offset. :func:`paper_state` checks layer
names, kinds, order and every blob's shape against the ``paper`` network and refuses CaffeNet
(``bvlc_reference_caffenet``: the same blob shapes, but it pools before it normalizes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alexnet_spec.messages import require_file

# V1LayerParameter.LayerType values (caffe.proto), mapped to the names the current format uses.
V1_TYPES: dict[int, str] = {
    1: "Accuracy", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout", 8: "Flatten",
    12: "ImageData", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU", 19: "Sigmoid",
    20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 23: "TanH", 29: "MemoryData",
}
# Layers that compute nothing the weights depend on, skipped when the order is checked.
PASSIVE = frozenset({"Data", "ImageData", "MemoryData", "Input", "ReLU", "Dropout", "Softmax", "SoftmaxWithLoss",
                     "Accuracy", "Split", "Silence", "Flatten"})


class CaffeError(ValueError):
    """A Caffe file that cannot be read, or that is not bvlc_alexnet; the message says which."""


@dataclass
class CaffeLayer:
    name: str
    kind: str  # "Convolution", "InnerProduct", "LRN", "Pooling", ... (V1 enums translated)
    blobs: list[np.ndarray] = field(default_factory=list)
    legacy: list[bool] = field(default_factory=list)  # per blob: shape from num/channels/height/width


# --- the wire format -------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data = memoryview(data)
        self.path = path

    def fail(self, what: str, offset: int):
        raise CaffeError(f"{self.path} is not a readable Caffe model: {what} at byte {offset}. "
                         "The file may be truncated or of another format; download it again.")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value, shift, start = 0, 0, pos
        while True:
            if pos >= end:
                self.fail("a number runs past the end of its message", start)
            byte = self.data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7
            if shift >= 70:
                self.fail("a number longer than 10 bytes", start)

    def fields(self, start: int, end: int):
        """(field number, wire type, value or (start, end) of the bytes, offset) of one message."""
        pos = start
        while pos < end:
            at = pos
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                self.fail("field number 0", at)
            if wire == 0:
                value, pos = self.varint(pos, end)
            elif wire == 1 or wire == 5:
                size = 8 if wire == 1 else 4
                if pos + size > end:
                    self.fail(f"a {8 * size}-bit value runs past the end of its message", at)
                value, pos = (pos, pos + size), pos + size
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    self.fail(f"a field of {length} bytes runs past the end of its message ({end - pos} bytes left)", at)
                value, pos = (pos, pos + length), pos + length
            else:
                self.fail(f"wire type {wire} (field {number})", at)
            yield number, wire, value, at

    def text(self, span: tuple[int, int], at: int) -> str:
        try:
            return bytes(self.data[span[0]:span[1]]).decode("utf-8")
        except UnicodeDecodeError:
            self.fail("a name that is not UTF-8", at)

    def floats(self, span: tuple[int, int], dtype: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        if (span[1] - span[0]) % size:
            self.fail(f"packed values of {span[1] - span[0]} bytes, not a multiple of {size}", span[0])
        return np.frombuffer(self.data, dtype=dtype, count=(span[1] - span[0]) // size, offset=span[0])

    def ints(self, span: tuple[int, int]) -> list[int]:
        out, pos = [], span[0]
        while pos < span[1]:
            value, pos = self.varint(pos, span[1])
            out.append(value)
        return out

    def blob(self, start: int, end: int) -> tuple[np.ndarray, bool]:
        legacy = {}
        shape, chunks, unpacked = None, [], []
        for number, wire, value, at in self.fields(start, end):
            if number in (1, 2, 3, 4) and wire == 0:
                legacy[number] = value
            elif number == 5 and wire == 2:
                chunks.append(self.floats(value, "<f4"))
            elif number == 5 and wire == 5:
                unpacked.append(self.floats(value, "<f4"))
            elif number == 8 and wire == 2:
                chunks.append(self.floats(value, "<f8"))
            elif number == 7 and wire == 2:
                dims = []
                for n, w, v, a in self.fields(*value):
                    if n == 1 and w == 2:
                        dims.extend(self.ints(v))
                    elif n == 1 and w == 0:
                        dims.append(v)
                shape = tuple(dims)
        values = np.concatenate(chunks + unpacked).astype(np.float32) if chunks or unpacked else np.zeros(0, np.float32)
        is_legacy = shape is None
        if is_legacy:
            shape = tuple(legacy.get(n, 0) for n in (1, 2, 3, 4))
            if not any(shape):
                shape = (0,)
        if any(d >= 2 ** 40 for d in shape) or int(np.prod(shape, dtype=np.float64)) != values.size:
            self.fail(f"a blob of shape {'x'.join(map(str, shape))} holding {values.size} values", start)
        return values.reshape(shape), is_legacy

    def layer(self, start: int, end: int, v1: bool) -> CaffeLayer:
        name_field, type_field, blob_field = (4, 5, 6) if v1 else (1, 2, 7)
        out = CaffeLayer("", "")
        for number, wire, value, at in self.fields(start, end):
            if number == name_field and wire == 2:
                out.name = self.text(value, at)
            elif number == type_field and v1 and wire == 0:
                out.kind = V1_TYPES.get(value, f"V1 type {value}")
            elif number == type_field and not v1 and wire == 2:
                out.kind = self.text(value, at)
            elif number == blob_field and wire == 2:
                array, legacy = self.blob(*value)
                out.blobs.append(array)
                out.legacy.append(legacy)
        return out


def read_layers(path: str | os.PathLike) -> list[CaffeLayer]:
    """The layers of a ``.caffemodel`` in file order, both formats (``layer`` and 2014's ``layers``)."""
    path = require_file(path, "Caffe model")
    reader = _Reader(path.read_bytes(), str(path))
    layers = []
    for number, wire, value, at in reader.fields(0, len(reader.data)):
        if number in (2, 100) and wire == 2:
            layers.append(reader.layer(*value, v1=number == 2))
    if not layers:
        raise CaffeError(f"{path} holds no Caffe layers: it is not a .caffemodel (NetParameter) file, or it is empty.")
    return layers


def read_blob(path: str | os.PathLike) -> np.ndarray:
    """A ``.binaryproto`` (one BlobProto, e.g. ilsvrc_2012_mean.binaryproto: 1x3x256x256, BGR)."""
    path = require_file(path, "Caffe blob")
    reader = _Reader(path.read_bytes(), str(path))
    array, _ = reader.blob(0, len(reader.data))
    if array.size == 0:
        raise CaffeError(f"{path} holds no values: it is not a .binaryproto mean file, or it is empty.")
    return array


# --- bvlc_alexnet -> the paper network ---------------------------------------------------------

# --8<-- [start:layout]
# bvlc_alexnet's layers that the weights depend on, in order; (Caffe name or None, kind, paper key).
BVLC_ALEXNET: tuple[tuple[str | None, str, str | None], ...] = (
    ("conv1", "Convolution", "features.0"), (None, "LRN", None), (None, "Pooling", None),
    ("conv2", "Convolution", "features.4"), (None, "LRN", None), (None, "Pooling", None),
    ("conv3", "Convolution", "features.8"),
    ("conv4", "Convolution", "features.10"),
    ("conv5", "Convolution", "features.12"), (None, "Pooling", None),
    ("fc6", "InnerProduct", "classifier.0"),
    ("fc7", "InnerProduct", "classifier.3"),
    ("fc8", "InnerProduct", "classifier.6"),
)
# --8<-- [end:layout]


def paper_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """The torch-layout shapes of the paper network's weights (blob shapes are the same in Caffe)."""
    from alexnet_spec.variants import get_spec

    spec = get_spec("paper")
    shapes, c_in = {}, 3
    for key, conv in zip(("features.0", "features.4", "features.8", "features.10", "features.12"), spec.convs):
        shapes[f"{key}.weight"] = (conv.filters, c_in // conv.groups, conv.kernel, conv.kernel)
        shapes[f"{key}.bias"] = (conv.filters,)
        c_in = conv.filters
    widths = (int(np.prod(spec.feature_shape)), *spec.hidden_units, num_classes)
    for key, i, o in zip(("classifier.0", "classifier.3", "classifier.6"), widths, widths[1:]):
        shapes[f"{key}.weight"], shapes[f"{key}.bias"] = (o, i), (o,)
    return shapes


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "none"


def paper_state(path: str | os.PathLike, layers: list[CaffeLayer] | None = None) -> dict[str, np.ndarray]:
    """bvlc_alexnet's weights as the ``paper`` network's torch state_dict (the same layouts: conv
    kernels (out, in/groups, kh, kw), fc6 reading the C,H,W flattening), or a CaffeError with one
    line per mismatch."""
    layers = read_layers(path) if layers is None else layers
    active = [layer for layer in layers if layer.kind not in PASSIVE]
    kinds = [layer.kind for layer in active]
    if kinds[:3] == ["Convolution", "Pooling", "LRN"]:
        raise CaffeError(
            f"{path} is CaffeNet (bvlc_reference_caffenet), not bvlc_alexnet: its conv1 is pooled before it is "
            "normalized (Convolution, Pooling, LRN), and the paper network normalizes first. Its blobs have the "
            "same shapes, so loading it would give a network that computes something else; refused.")
    last = next((layer for layer in reversed(active) if layer.kind == "InnerProduct" and len(layer.blobs) == 2), None)
    num_classes = int(last.blobs[1].size) if last is not None else 1000
    shapes = paper_shapes(num_classes)
    problems, state = [], {}
    if kinds != [kind for _, kind, _ in BVLC_ALEXNET]:
        found = " ".join(f"{layer.name}({layer.kind})" for layer in active)
        want = " ".join(f"{name or '-'}({kind})" for name, kind, _ in BVLC_ALEXNET)
        problems.append(f"layer order: expected {want}; found {found}")
    by_name = {layer.name: layer for layer in active}
    for name, kind, key in BVLC_ALEXNET:
        if key is None:
            continue
        layer = by_name.get(name)
        if layer is None:
            problems.append(f"{name}: missing (expected a {kind} layer named {name})")
            continue
        if layer.kind != kind:
            problems.append(f"{name}: expected a {kind} layer; found {layer.kind}")
        if len(layer.blobs) != 2:
            problems.append(f"{name}: expected 2 blobs (weight, bias); found {len(layer.blobs)}")
            continue
        for suffix, blob, legacy in zip(("weight", "bias"), layer.blobs, layer.legacy):
            want = shapes[f"{key}.{suffix}"]
            found = blob.shape
            if legacy and found == (1,) * (4 - len(want)) + want:  # 2014's dims: 1x1xOxI, 1x1x1xO
                found = want
            if found != want:
                problems.append(f"{name} {suffix}: expected {_fmt(want)}; found {_fmt(blob.shape)}")
                continue
            state[f"{key}.{suffix}"] = np.ascontiguousarray(blob.reshape(want), dtype=np.float32)
    extra = [layer.name for layer in active if layer.blobs and layer.name not in {n for n, _, _ in BVLC_ALEXNET}]
    problems += [f"{name}: unexpected layer with weights" for name in extra]
    if problems:
        raise CaffeError(f"{path} is not bvlc_alexnet (the paper network); nothing was ported:\n  "
                         + "\n  ".join(problems))
    return state


def sha1(path: str | os.PathLike) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def check_sha1(path: str | os.PathLike, expected: str) -> None:
    found = sha1(path)
    if found != expected.strip().lower():
        raise CaffeError(f"{path} has SHA-1 {found}, not {expected}: it is truncated or another file. "
                         "Download it again.")
