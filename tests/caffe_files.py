"""Test helpers: a tiny protobuf writer for Caffe models (both formats), and deploy prototxts, so
that tests make bvlc_alexnet-shaped files with known weights and run them in OpenCV's Caffe runtime.

Field numbers are those of Caffe's schema (BVLC/caffe src/caffe/proto/caffe.proto), as in
alexnet_spec/caffe.py. The writer lives here, not in the package: the project only reads Caffe.
"""

from __future__ import annotations

import numpy as np

V1_ENUM = {"Data": 5, "Convolution": 4, "ReLU": 18, "LRN": 15, "Pooling": 17, "InnerProduct": 14, "Dropout": 6,
           "SoftmaxWithLoss": 21}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def blob(array: np.ndarray, *, legacy: bool = False, packed: bool = True) -> bytes:
    """A BlobProto: ``shape`` (7) or 2014's num/channels/height/width (1-4) padded with 1s on the left."""
    a = np.asarray(array, "<f4")
    if legacy:
        dims = (1,) * (4 - a.ndim) + a.shape
        head = b"".join(key(n, 0) + varint(d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        head = delimited(7, delimited(1, b"".join(varint(d) for d in a.shape)))
    if packed:
        data = delimited(5, a.tobytes())
    else:
        data = b"".join(key(5, 5) + v.tobytes() for v in a.reshape(-1))
    return head + data


def layer(name: str, kind: str, blobs=(), *, v1: bool = False, unpacked_bias: bool = False) -> bytes:
    arrays = [blob(b, legacy=v1, packed=not (unpacked_bias and i == 1)) for i, b in enumerate(blobs)]
    if v1:
        body = delimited(4, name.encode()) + key(5, 0) + varint(V1_ENUM[kind]) + b"".join(delimited(6, a) for a in arrays)
        return delimited(2, body)
    body = delimited(1, name.encode()) + delimited(2, kind.encode()) + b"".join(delimited(7, a) for a in arrays)
    return delimited(100, body)


# (name, kind) of bvlc_alexnet's train_val net; weights go to the layers named in WEIGHTS.
ALEXNET_LAYERS = (
    ("data", "Data"), ("conv1", "Convolution"), ("relu1", "ReLU"), ("norm1", "LRN"), ("pool1", "Pooling"),
    ("conv2", "Convolution"), ("relu2", "ReLU"), ("norm2", "LRN"), ("pool2", "Pooling"),
    ("conv3", "Convolution"), ("relu3", "ReLU"), ("conv4", "Convolution"), ("relu4", "ReLU"),
    ("conv5", "Convolution"), ("relu5", "ReLU"), ("pool5", "Pooling"),
    ("fc6", "InnerProduct"), ("relu6", "ReLU"), ("drop6", "Dropout"),
    ("fc7", "InnerProduct"), ("relu7", "ReLU"), ("drop7", "Dropout"),
    ("fc8", "InnerProduct"), ("loss", "SoftmaxWithLoss"),
)
SHAPES = {
    "conv1": (96, 3, 11, 11), "conv2": (256, 48, 5, 5), "conv3": (384, 256, 3, 3), "conv4": (384, 192, 3, 3),
    "conv5": (256, 192, 3, 3), "fc6": (4096, 9216), "fc7": (4096, 4096), "fc8": (1000, 4096),
}


def caffenet_order(layers=ALEXNET_LAYERS):
    """CaffeNet: each of conv1's and conv2's pool comes before its norm."""
    out = list(layers)
    for norm, pool in (("norm1", "pool1"), ("norm2", "pool2")):
        i, j = [n for n, _ in out].index(norm), [n for n, _ in out].index(pool)
        out[i], out[j] = out[j], out[i]
    return tuple(out)


def random_weights(seed: int = 0, conv1_std: float = 0.05) -> dict[str, list[np.ndarray]]:
    """Seeded weights whose activations stay informative: conv1 large enough that Caffe's LRN
    divides by a factor well above 1, the rest He-scaled so nothing dies or explodes; small random
    biases (so a bias put in the wrong place shows)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        std = conv1_std if name == "conv1" else np.sqrt(2.0 / fan_in)
        out[name] = [(rng.standard_normal(shape, np.float32) * np.float32(std)).astype(np.float32),
                     (rng.standard_normal(shape[0], np.float32) * np.float32(0.1)).astype(np.float32)]
    return out


def caffemodel(weights, *, v1: bool = False, layers=ALEXNET_LAYERS, unpacked_bias: str | None = None) -> bytes:
    """The bytes of a NetParameter with these weights, in the current (``layer``) or 2014 (``layers``) format."""
    parts = [delimited(1, b"AlexNet")]
    for name, kind in layers:
        parts.append(layer(name, kind, weights.get(name, ()), v1=v1, unpacked_bias=name == unpacked_bias))
    return b"".join(parts)


_CONV = {"conv1": (96, 11, 0, 4, 1), "conv2": (256, 5, 2, 1, 2), "conv3": (384, 3, 1, 1, 1),
         "conv4": (384, 3, 1, 1, 2), "conv5": (256, 3, 1, 1, 2)}


def deploy_prototxt(layers=ALEXNET_LAYERS) -> str:
    """bvlc_alexnet's deploy net (input 1x3x227x227) for OpenCV, in the order ``layers`` gives."""
    text = ['name: "AlexNet"', 'input: "data"', "input_shape { dim: 1 dim: 3 dim: 227 dim: 227 }"]
    top = "data"
    for name, kind in layers:
        if kind in ("Data", "SoftmaxWithLoss"):
            continue
        if kind in ("ReLU", "Dropout"):  # in place
            params = 'dropout_param { dropout_ratio: 0.5 }' if kind == "Dropout" else ""
            text.append(f'layer {{ name: "{name}" type: "{kind}" bottom: "{top}" top: "{top}" {params} }}')
            continue
        if kind == "Convolution":
            n, k, pad, stride, group = _CONV[name]
            params = (f"convolution_param {{ num_output: {n} kernel_size: {k} pad: {pad} stride: {stride} "
                      f"group: {group} }}")
        elif kind == "InnerProduct":
            params = f"inner_product_param {{ num_output: {SHAPES[name][0]} }}"
        elif kind == "LRN":
            params = "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }"
        else:
            params = "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"
        text.append(f'layer {{ name: "{name}" type: "{kind}" bottom: "{top}" top: "{name}" {params} }}')
        top = name
    return "\n".join(text) + "\n"


def opencv_forward(prototxt_path, caffemodel_path, x_nchw: np.ndarray) -> np.ndarray:
    """fc8's output in OpenCV's Caffe runtime (its own importer and layers: not our code)."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt_path), str(caffemodel_path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(np.ascontiguousarray(x_nchw, np.float32))
    return np.asarray(net.forward("fc8"), np.float64)
