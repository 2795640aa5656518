"""The architecture of each variant as data: what both frameworks' models are checked against.

The models are written out by hand (``alexnet_torch/<variant>.py``, ``alexnet_keras/<variant>.py``);
tests hold them to these facts and to ``alexnet_spec.shapes``. Input checks, FLOP counts and the
docs read them too. Variants added by later work register themselves in ``_SPECS``.
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class Conv:
    """One convolution. ``padding`` is PyTorch's symmetric zero padding (an int) or ``"same"``,
    TensorFlow's SAME padding, whose odd pixel goes bottom/right."""

    name: str
    filters: int
    kernel: int
    stride: int = 1
    padding: int | str = 0
    groups: int = 1
    lrn: bool = False  # LocalResponseNorm after the ReLU
    pool: bool = False  # max pooling after the ReLU (and the LRN)


@dataclass(frozen=True)
class LRNParams:
    """Local response normalization in PyTorch's convention:
    ``b = a / (k + alpha / size * sum(a^2 over size channels)) ** beta``."""

    size: int
    alpha: float
    beta: float
    k: float


# --8<-- [start:lrn-flavours]
LRN_FLAVOURS: dict[str, LRNParams] = {
    # Caffe's bvlc_alexnet, which the source document's PyTorch class follows: k=1, alpha=1e-4
    # divided by n.
    "caffe": LRNParams(size=5, alpha=1e-4, beta=0.75, k=1.0),
    # Krizhevsky et al. 2012, section 3.3: k=2, alpha=1e-4 *not* divided by n (so 5e-4 here).
    "paper": LRNParams(size=5, alpha=5e-4, beta=0.75, k=2.0),
}
# --8<-- [end:lrn-flavours]
# Earlier names, still read from weight files' metadata and accepted by the builders.
LRN_ALIASES: dict[str, str] = {"document": "caffe"}


def lrn_flavour(name: str) -> str:
    """The canonical name of an LRN flavour (``"document"`` is read as ``"caffe"``); a clear
    error names the known ones."""
    name = LRN_ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in LRN_FLAVOURS:
        raise ValueError(f"lrn must be one of {sorted(LRN_FLAVOURS)}; found {name!r}")
    return name


@dataclass(frozen=True)
class BatchNormParams:
    """BatchNormalization in Keras's convention, which the document's network was written in.

    Keras updates ``moving = momentum * moving + (1 - momentum) * batch`` with the *biased* batch
    variance; PyTorch writes the same update as ``(1 - m) * running + m * batch`` and by default
    uses the unbiased variance. A PyTorch model that trains like the Keras one takes
    ``torch_momentum`` and must update its running variance with the biased batch variance.
    """

    epsilon: float = 1e-3  # keras.layers.BatchNormalization's default
    momentum: float = 0.99  # Keras's convention: the weight of the old moving statistic

    @property
    def torch_momentum(self) -> float:
        """PyTorch's ``momentum``: the weight of the new batch statistic."""
        return 1.0 - self.momentum


@dataclass(frozen=True)
class VariantSpec:
    name: str
    input_size: int  # height = width the network is designed for
    channels: int
    num_classes: int
    convs: tuple[Conv, ...]
    pool_size: int
    pool_stride: int
    hidden_units: tuple[int, ...]  # fully connected layers before the classifier
    dropout: float
    feature_shape: tuple[int, int, int]  # (C, H, W) that the first fully connected layer reads
    min_input_size: int | None = None  # None: exactly input_size; else any size at least this
    adaptive_pool: tuple[int, int] | None = None  # average-pool the features to (H, W) before the FCs
    dropout_before_dense: bool = False  # torchvision: Dropout precedes each hidden FC, not follows
    portable_options: tuple[str, ...] = ()  # build options weights cannot tell, kept in files
    size_hint: str = ""  # what to do when an input has the wrong size
    notes: str = ""
    pool_padding: int | str = 0  # like Conv.padding: symmetric zeros (an int) or TensorFlow "same"
    batchnorm: BatchNormParams | None = None  # after every conv and dense layer, before the ReLU
    softmax: bool = False  # the network ends in a softmax (the output is probabilities)

    @property
    def weighted_layers(self) -> tuple[str, ...]:
        """Names of the layers with weights, in network order (Keras layer names); each layer's
        BatchNormalization, when the variant has one, follows it as ``<name>_bn``."""
        fcs = tuple(f"fc{i + 1}" for i in range(len(self.hidden_units)))
        names = tuple(c.name for c in self.convs) + fcs + ("predictions",)
        if self.batchnorm is None:
            return names
        return tuple(n for name in names for n in (name, f"{name}_bn"))

    @property
    def input_shape_nchw(self) -> tuple[int, int, int]:
        return (self.channels, self.input_size, self.input_size)

    @property
    def input_shape_nhwc(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, self.channels)


# --8<-- [start:paper-spec]
PAPER = VariantSpec(
    name="paper",
    input_size=227,
    channels=3,
    num_classes=1000,
    convs=(
        Conv("conv1", 96, 11, stride=4, padding=0, lrn=True, pool=True),
        Conv("conv2", 256, 5, padding=2, groups=2, lrn=True, pool=True),
        Conv("conv3", 384, 3, padding=1),
        Conv("conv4", 384, 3, padding=1, groups=2),
        Conv("conv5", 256, 3, padding=1, groups=2, pool=True),
    ),
    pool_size=3,
    pool_stride=2,
    hidden_units=(4096, 4096),
    dropout=0.5,
    feature_shape=(256, 6, 6),
    portable_options=("lrn",),
    size_hint=(
        "conv1 has no padding, so only 227x227 reaches the 6x6x256 map the classifier reads. "
        "Resize or crop to 227x227, or use the 'torchvision' variant for 224x224 images."
    ),
    notes=(
        "The source document's two-tower network (Krizhevsky et al. 2012): grouped conv2/4/5, "
        "LocalResponseNorm after conv1 and conv2. conv1 has no padding, so only a 227x227 input "
        "reaches the 6x6x256 map the classifier expects (224 gives 5x5)."
    ),
)
# --8<-- [end:paper-spec]

# --8<-- [start:torchvision-spec]
TORCHVISION = VariantSpec(
    name="torchvision",
    input_size=224,
    channels=3,
    num_classes=1000,
    convs=(
        Conv("conv1", 64, 11, stride=4, padding=2, pool=True),
        Conv("conv2", 192, 5, padding=2, pool=True),
        Conv("conv3", 384, 3, padding=1),
        Conv("conv4", 256, 3, padding=1),
        Conv("conv5", 256, 3, padding=1, pool=True),
    ),
    pool_size=3,
    pool_stride=2,
    hidden_units=(4096, 4096),
    dropout=0.5,
    feature_shape=(256, 6, 6),
    min_input_size=63,
    adaptive_pool=(6, 6),
    dropout_before_dense=True,
    size_hint=(
        "Smaller inputs vanish before pool5. Resize images to at least 63x63 (the ImageNet weights "
        "expect resize 256, center crop 224); a Keras model is built for one size: pass "
        "input_shape=(H, W, 3) for sizes other than 224x224."
    ),
    notes=(
        "torchvision's AlexNet, the 'One weird trick' network (arXiv:1404.5997): 64/192/384/256/256 "
        "channels, no LRN, no groups, AdaptiveAvgPool2d((6, 6)) so any input of at least 63x63 works, "
        "Dropout before each hidden fully connected layer."
    ),
)
# --8<-- [end:torchvision-spec]

# --8<-- [start:cifar-spec]
CIFAR = VariantSpec(
    name="cifar",
    input_size=32,
    channels=3,
    num_classes=10,
    convs=(
        Conv("conv1", 96, 11, stride=4, padding="same", pool=True),
        Conv("conv2", 256, 5, padding="same", pool=True),
        Conv("conv3", 384, 3, padding="same"),
        Conv("conv4", 384, 3, padding="same"),
        Conv("conv5", 256, 3, padding="same", pool=True),
    ),
    pool_size=2,
    pool_stride=2,
    pool_padding="same",
    hidden_units=(4096, 4096, 1000),
    dropout=0.4,
    feature_shape=(256, 1, 1),
    batchnorm=BatchNormParams(epsilon=1e-3, momentum=0.99),
    softmax=True,
    portable_options=("logits",),
    size_hint=(
        "The network is built for 32x32 images (CIFAR-10): its stride-4 conv1 and three 2x2 pools "
        "bring 32x32 down to the 1x1x256 map that fc1 reads, and any other size gives a map fc1 "
        "cannot take. Resize to 32x32, or use the 'paper' variant for 227x227 images."
    ),
    notes=(
        "The source document's Keras network: BatchNormalization after every conv and dense layer "
        "(Keras's epsilon 1e-3 and momentum 0.99), TensorFlow SAME padding (at stride 4 the odd "
        "pixel goes bottom/right), 2x2 SAME max pools, three hidden dense layers with dropout 0.4, "
        "10 classes and a softmax output."
    ),
)
# --8<-- [end:cifar-spec]

# The registry: a new variant adds its spec here, and its port table in tables.py.
_SPECS: dict[str, VariantSpec] = {"paper": PAPER, "cifar": CIFAR, "torchvision": TORCHVISION}
VARIANTS: tuple[str, ...] = tuple(_SPECS)

# Paper initialization (section 5): weights N(0, 0.01); biases 1 in these layers, 0 elsewhere.
# Both models write the values out at their layers (init="paper"); tests/test_paper_*.py hold them to these.
PAPER_INIT_STD = 0.01
PAPER_INIT_ONE_BIAS = ("conv2", "conv4", "conv5", "fc1", "fc2")


def get_spec(variant: str) -> VariantSpec:
    """The spec of ``variant``; a clear error names the known variants."""
    try:
        return _SPECS[variant]
    except KeyError:
        raise ValueError(
            f"unknown AlexNet variant {variant!r}; expected one of {', '.join(map(repr, VARIANTS))}"
        ) from None


def build_variant(builders: dict, variant: str, num_classes: int | None, options: dict):
    """The body of both frameworks' ``build()``: a clear error for an unknown name, then the
    variant's own builder, with ``num_classes`` among its options when given."""
    get_spec(variant)
    if num_classes is not None:
        options["num_classes"] = check_num_classes(num_classes)
    return builders[variant](**options)


def check_num_classes(num_classes) -> int:
    """A positive int (numpy ints too); bool, float and str are refused, not coerced: ``True`` would
    otherwise build a one-class model and ``"10"`` fail deep inside a layer."""
    import numbers

    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(
            f"num_classes must be a positive int (the size of the last layer, e.g. 1000 for ImageNet, 10 for "
            f"CIFAR-10); found {num_classes!r} ({type(num_classes).__name__})."
        )
    return int(num_classes)


def check_options(variant: str, options: dict) -> dict:
    """``options`` read from a file or a model config, refused unless each is one this variant
    keeps (``portable_options``) with a plain value: a file must not choose what else gets loaded."""
    allowed = get_spec(variant).portable_options
    for key, value in options.items():
        if key not in allowed or not isinstance(value, (str, bool, int, float)):
            raise ValueError(
                f"option {key}={value!r} is not one the {variant!r} AlexNet keeps with its weights; "
                f"expected only {list(allowed) or 'none'}. The file or model config is not one of ours, "
                "or was altered."
            )
    return options
