"""The fast paths compute exactly what the plain ones do: our LocalResponseNorm in both frameworks
and our torch Linear against PyTorch's own in float64, Keras predict against Keras's own, and the
models' default fast settings."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import alexnet_torch
from alexnet_spec import LRN_FLAVOURS
from alexnet_torch import layers
from alexnet_torch.layers import Linear, LocalResponseNorm, channels_last_on_cpu
from tests.reference import DocumentAlexNet, float64_on_every_backend, rel_error

shapes = st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 6), st.integers(1, 6))
lrn_args = st.one_of(
    st.sampled_from([(p.size, p.alpha, p.beta, p.k) for p in LRN_FLAVOURS.values()]),
    st.tuples(st.integers(1, 8), st.floats(1e-5, 1.0), st.floats(0.1, 2.0), st.floats(0.5, 3.0)),
)


def _input(shape, scale, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


@settings(max_examples=80, deadline=None)
@given(
    shape=shapes, args=lrn_args, scale=st.floats(0.01, 100.0), seed=st.integers(0, 99),
    layout=st.sampled_from(["nchw", "channels_last", "strided"]), inplace=st.booleans(),
    block=st.sampled_from([1, 50, 1 << 18]),  # one pixel per block, several blocks and a remainder, one
)
def test_torch_lrn_equals_pytorch_in_float64(shape, args, scale, seed, layout, inplace, block):
    saved, layers.BLOCK_ELEMENTS = layers.BLOCK_ELEMENTS, block
    try:
        _check_lrn(shape, args, scale, seed, layout, inplace)
    finally:
        layers.BLOCK_ELEMENTS = saved


def _check_lrn(shape, args, scale, seed, layout, inplace):
    x = _input(shape, scale, seed)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = _input((shape[0], shape[1], shape[2], 2 * shape[3]), scale, seed)[..., ::2]
    ref = F.local_response_norm(x, *args)
    before = x.clone()
    ours = LocalResponseNorm(*args, inplace=inplace)(x)
    assert ours.shape == ref.shape
    assert rel_error(ref, ours) <= 1e-13
    if inplace:
        assert ours is x
    else:
        assert torch.equal(x, before)


@pytest.mark.parametrize("flavour", sorted(LRN_FLAVOURS))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("channels", [96, 256])  # AlexNet's two LRN widths
def test_torch_lrn_at_alexnets_widths(flavour, channels_last, channels):
    p = LRN_FLAVOURS[flavour]
    args = (p.size, p.alpha, p.beta, p.k)
    x64 = _input((2, channels, 7, 7), 30.0, 0)
    ref = F.local_response_norm(x64, *args)
    for x, tolerance in ((x64, 1e-13), (x64.float(), 1e-6)):  # float64 exact, float32 at its floor
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ours = LocalResponseNorm(*args)(x)
        assert ours.dtype == x.dtype
        assert rel_error(ref, ours) <= tolerance


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.3])  # the two square-root forms and pow
def test_torch_lrn_in_float32_stays_at_rounding(beta):
    args = (5, 1e-3, beta, 1.0)
    x = _input((2, 96, 9, 9), 30.0, 4).relu().contiguous(memory_format=torch.channels_last)
    ref = F.local_response_norm(x, *args)
    with torch.inference_mode():
        ours = LocalResponseNorm(*args, inplace=True)(x.float())
    assert rel_error(ref, ours.double()) <= 1e-6


def test_torch_lrn_gradients_and_other_ranks_match():
    x = _input((2, 9, 3, 4), 5.0, 1).requires_grad_()
    args = (5, 0.3, 0.75, 1.0)
    (g_ours,) = torch.autograd.grad(LocalResponseNorm(*args)(x).square().sum(), x)
    (g_ref,) = torch.autograd.grad(F.local_response_norm(x, *args).square().sum(), x)
    assert rel_error(g_ref, g_ours) <= 1e-12
    for shape in [(2, 7, 5), (2, 7, 3, 2, 2)]:  # not 4-D: PyTorch's own code path
        y = _input(shape, 5.0, 2)
        assert torch.equal(LocalResponseNorm(*args)(y), F.local_response_norm(y, *args))


def test_torch_lrn_traces_and_exports_as_plain_ops():
    module = LocalResponseNorm(5, 1e-4, 0.75, 1.0, inplace=True).eval()
    x = _input((2, 96, 6, 6), 30.0, 7, torch.float32).contiguous(memory_format=torch.channels_last)
    ref = F.local_response_norm(x, 5, 1e-4, 0.75, 1.0)
    traced = torch.jit.trace(module, x.clone())
    exported = torch.export.export(module, (x.clone(),)).module()
    for graph in (traced, exported):
        y = x.clone()
        assert rel_error(ref, graph(y)) <= 1e-6
        assert torch.equal(y, x)  # graphs hold the plain formula: the input is left alone


def test_torch_lrn_is_a_drop_in():
    ours, theirs = LocalResponseNorm(5, 1e-4, 0.75, 1.0), torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    assert isinstance(ours, torch.nn.LocalResponseNorm)
    assert repr(ours) == repr(theirs) and not list(ours.state_dict())
    assert repr(LocalResponseNorm(5, inplace=True)) == "LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0, inplace=True)"
    legacy = LocalResponseNorm(5)
    del legacy.__dict__["inplace"]  # as unpickled from a module saved before the option existed
    x = _input((1, 6, 2, 2), 3.0, 8)
    assert rel_error(F.local_response_norm(x, 5), legacy(x)) <= 1e-13 and not legacy.inplace


@pytest.mark.parametrize("batch", [1, 3])
def test_torch_linear_equals_pytorch_in_float64_with_gradients(batch):
    theirs = torch.nn.Linear(20, 7).double()
    ours = Linear.replacing(theirs)
    assert isinstance(ours, torch.nn.Linear) and repr(ours) == repr(theirs)
    assert ours.weight is theirs.weight and ours.bias is theirs.bias
    x = _input((batch, 20), 3.0, 5).requires_grad_()
    out = ours(x)
    assert out.is_contiguous() and out.shape == (batch, 7)
    ref = theirs(x)
    assert rel_error(ref.detach(), out.detach()) <= 1e-14
    grads = torch.autograd.grad(out.square().sum(), (x, ours.weight, ours.bias))
    ref_grads = torch.autograd.grad(ref.square().sum(), (x, theirs.weight, theirs.bias))
    for g, r in zip(grads, ref_grads):
        assert rel_error(r, g) <= 1e-13
    y = _input((2, 4, 20), 1.0, 6)  # not 2-D: PyTorch's own code path
    assert torch.equal(ours(y), theirs(y))


@pytest.mark.parametrize("flavour", sorted(LRN_FLAVOURS))
@settings(max_examples=20, deadline=None)
@given(shape=shapes, scale=st.floats(0.01, 100.0), seed=st.integers(0, 99), size=st.integers(1, 8))
def test_keras_lrn_equals_pytorch_in_float64(flavour, shape, scale, seed, size):
    import keras

    from alexnet_keras import LocalResponseNormalization

    p = LRN_FLAVOURS[flavour]
    x = _input(shape, scale, seed)
    ref = F.local_response_norm(x, size, p.alpha, p.beta, p.k).numpy().transpose(0, 2, 3, 1)
    layer = LocalResponseNormalization(size, p.alpha, p.beta, p.k, dtype="float64")
    with float64_on_every_backend():
        ours = keras.ops.convert_to_numpy(layer(x.numpy().transpose(0, 2, 3, 1)))
    assert ours.dtype == np.float64
    assert rel_error(ref, ours) <= 1e-13


def test_optimized_paper_model_in_float64_is_the_documents():
    """The whole opt-in fast path (channels_last, fast LRN, fast Linear) in float64 against the
    document's class."""
    torch.manual_seed(0)
    doc = DocumentAlexNet().double().eval()
    ours = alexnet_torch.build("paper").double().eval()
    ours.load_state_dict(doc.state_dict())
    alexnet_torch.optimize(ours)
    x = _input((1, 3, 227, 227), 1.0, 3)
    with torch.inference_mode():
        assert rel_error(doc(x), ours(x)) <= 1e-12


def test_literal_models_use_pytorchs_own_modules():
    """The default path is plain PyTorch: no subclass of ours where PyTorch has the module."""
    paper = alexnet_torch.build("paper")
    assert [type(m) for m in paper.modules() if isinstance(m, torch.nn.LocalResponseNorm)] == [torch.nn.LocalResponseNorm] * 2
    for variant in alexnet_torch.VARIANTS:
        model = alexnet_torch.build(variant)
        dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        assert dense and all(type(m) is torch.nn.Linear for m in dense)
        assert not model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert not model._forward_pre_hooks


@pytest.mark.parametrize("variant", alexnet_torch.VARIANTS)
def test_optimize_keeps_weights_and_numbers_and_runs_channels_last(variant):
    from alexnet_spec import get_spec

    torch.manual_seed(0)
    model = alexnet_torch.build(variant).eval()
    plain = alexnet_torch.build(variant).eval()
    plain.load_state_dict(model.state_dict())
    params = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    assert alexnet_torch.optimize(model) is model
    assert alexnet_torch.optimize(model) is model  # twice: still one hook
    assert [id(p) for p in model.parameters()] == params and list(model.state_dict()) == keys
    assert len(model._forward_pre_hooks) == 1
    assert all(type(m) is Linear for m in model.modules() if isinstance(m, torch.nn.Linear))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LocalResponseNorm)]
    assert all(type(m) is LocalResponseNorm and m.inplace for m in norms)
    conv = model.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    handle = conv.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(2, *get_spec(variant).input_shape_nchw)
    try:
        with torch.inference_mode():
            fast, ref = model(x), plain(x)
    finally:
        handle.remove()
    assert seen == [True]
    assert rel_error(ref, fast) <= 1e-5


def test_channels_last_on_cpu_converts_only_4d_tensors():
    x = torch.zeros(1, 3, 4, 4)
    assert channels_last_on_cpu(x).is_contiguous(memory_format=torch.channels_last)
    image = x[0]  # 3-D: left alone
    assert channels_last_on_cpu(image) is image


def test_torchvision_model_is_torchvisions_with_its_initialization():
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.alexnet()
    torch.manual_seed(0)
    ours = alexnet_torch.build("torchvision")
    assert isinstance(ours, torchvision.models.AlexNet)
    assert repr(ours).partition("(")[2] == repr(theirs).partition("(")[2]  # the same modules
    for (k, a), (k2, b) in zip(theirs.state_dict().items(), ours.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


@pytest.mark.parametrize("variant", alexnet_torch.VARIANTS)
def test_keras_models_leave_xla_to_keras_until_optimized(variant):
    import keras

    import alexnet_keras

    inputs = keras.Input((2,))
    keras_auto = bool(keras.Model(inputs, keras.layers.Dense(1)(inputs)).jit_compile)  # Keras's own choice here
    model = alexnet_keras.build(variant, num_classes=10)
    assert bool(model.jit_compile) is keras_auto
    model.compile(loss="categorical_crossentropy")
    assert bool(model.jit_compile) is keras_auto
    fast = alexnet_keras.optimize(model)
    assert fast is not model and bool(model.jit_compile) is keras_auto  # the literal model is left as it was
    assert fast.compiled and fast.variant == variant and fast.options == model.options
    if variant in alexnet_keras.fast.XLA_SLOWER:  # cifar: slower under XLA, left to Keras, and copied as it is
        assert bool(fast.jit_compile) is keras_auto
        assert [type(layer) for layer in fast.layers] == [type(layer) for layer in model.layers]
    else:
        assert bool(fast.jit_compile) is (keras.backend.backend() in ("tensorflow", "jax"))


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_optimized_keras_model_is_the_float64_network(variant):
    """The opt-in model (towers, transposed dense kernels, XLA) judged as the literal one is: every
    parameter random, against the same weights run in float64, at parity's tolerance."""
    import keras

    import alexnet_keras
    from parity import keras_to_torch, random_batch, randomize_torch, torch_to_keras
    from parity.compare import DEFAULT_RTOL
    from tests.reference import torch_float64
    from alexnet_spec import get_spec

    module = randomize_torch(alexnet_torch.build(variant, num_classes=10), seed=5)
    plain = torch_to_keras(module)
    fast = alexnet_keras.optimize(plain)
    x = random_batch((3, *get_spec(variant).input_shape_nchw), seed=5)
    got = fast.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), verbose=0)
    assert rel_error(torch_float64(module, x), got) <= DEFAULT_RTOL
    kinds = {type(layer).__name__ for layer in fast.layers}
    if keras.backend.backend() in ("tensorflow", "jax"):  # the backends where optimize turns XLA on
        assert "TransposedDense" in kinds and "Dense" not in kinds
        assert ("TowerConv2D" in kinds) is (variant == "paper")  # the grouped convolutions, paper's only
    assert [w.path for w in fast.weights] == [w.path for w in plain.weights]
    back = keras_to_torch(fast)  # ports read the fast model's kernels in Dense's layout
    for (key, a), (key2, b) in zip(module.state_dict().items(), back.state_dict().items(), strict=True):
        assert key == key2 and torch.equal(a, b), key


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_fast_layers_compute_what_keras_layers_compute(data_format):
    import keras

    from alexnet_keras.fast import TowerConv2D, TransposedDense

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 9, 9, 8) if data_format == "channels_last" else (2, 8, 9, 9)).astype(np.float32)
    grouped = keras.layers.Conv2D(6, 3, strides=2, padding="same", groups=2, data_format=data_format)
    towers = TowerConv2D.from_config(grouped.get_config())
    grouped.build(x.shape), towers.build(x.shape)
    grouped.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in grouped.get_weights()])
    towers.set_weights(grouped.get_weights())
    try:
        expected = keras.ops.convert_to_numpy(grouped(x))
    except Exception as error:  # TensorFlow's CPU kernels take no channels-first convolution
        pytest.skip(f"Keras's Conv2D itself fails here: {type(error).__name__}")
    assert rel_error(expected, keras.ops.convert_to_numpy(towers(x))) <= 1e-6
    flat = x.reshape(2, -1)
    dense = keras.layers.Dense(5, activation="relu")
    dense.build(flat.shape)
    dense.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in dense.get_weights()])
    transposed = TransposedDense.replacing(dense)
    transposed.build(flat.shape)
    transposed.set_weights([dense.get_weights()[0].T, dense.get_weights()[1]])
    assert transposed.kernel.shape == (5, flat.shape[1])  # nn.Linear's layout
    assert rel_error(keras.ops.convert_to_numpy(dense(flat)), keras.ops.convert_to_numpy(transposed(flat))) <= 1e-6


def test_optimize_refuses_what_it_cannot_rebuild():
    import keras

    import alexnet_keras

    model = alexnet_keras.build("torchvision", num_classes=10, input_shape=(64, 64, 3))
    model.get_layer("fc1").enable_lora(2)
    with pytest.raises(ValueError, match="'fc1'.*lora_rank.*without optimize"):
        alexnet_keras.optimize(model)
    inputs = keras.Input((4,))
    constrained = keras.Model(inputs, keras.layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(2.0))(inputs))
    with pytest.raises(ValueError, match="kernel_constraint MaxNorm"):
        alexnet_keras.optimize(constrained)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match="subclassed model.*jit_compile=True"):
        alexnet_keras.optimize(Subclassed())
    with pytest.raises(TypeError, match="alexnet_torch.optimize"):
        alexnet_keras.optimize(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_optimize_takes_any_functional_or_sequential_model(kind):
    import keras

    import alexnet_keras

    stack = [keras.layers.Conv2D(4, 3, groups=2), keras.layers.Flatten(), keras.layers.Dense(5, activation="relu"),
             keras.layers.Dense(3, kernel_regularizer="l2")]
    if kind == "sequential":
        model = keras.Sequential([keras.Input((6, 6, 2)), *stack])
    else:
        inputs = x = keras.Input((6, 6, 2))
        for layer in stack:
            x = layer(x)
        model = keras.Model(inputs, x)
    x = np.random.default_rng(4).standard_normal((3, 6, 6, 2)).astype(np.float32)
    fast = alexnet_keras.optimize(model)
    assert type(fast) is type(model)
    assert rel_error(model.predict(x, verbose=0), fast.predict(x, verbose=0)) <= 1e-5
    assert len(fast.losses) == len(model.losses) == 1  # the L2 penalty came along


def test_optimized_and_plain_models_read_each_others_weight_files(tmp_path):
    """``.safetensors`` files (kernels in Dense's layout) cross between a fast and a plain model in
    both directions; Keras's ``.weights.h5``, which files weights by layer class, does not, and the
    refusal says what to use instead. Each kind reloads into its own kind."""
    import keras

    import alexnet_keras
    from alexnet_keras.weights import expected_shapes

    def model():
        return alexnet_keras.build("torchvision", num_classes=10, input_shape=(64, 64, 3))

    plain = model()
    fast = alexnet_keras.optimize(plain)
    assert expected_shapes(fast) == expected_shapes(plain)
    x = np.random.default_rng(6).standard_normal((2, 64, 64, 3)).astype(np.float32)
    expected = plain.predict(x, verbose=0)
    for name, source in (("fast", fast), ("plain", plain)):
        for suffix in (".safetensors", ".weights.h5"):
            alexnet_keras.save_weights(source, tmp_path / f"{name}{suffix}")
    into_plain = alexnet_keras.load_weights(model(), tmp_path / "fast.safetensors")
    into_fast = alexnet_keras.load_weights(alexnet_keras.optimize(model()), tmp_path / "plain.safetensors")
    assert np.array_equal(into_plain.predict(x, verbose=0), expected)
    assert rel_error(expected, into_fast.predict(x, verbose=0)) <= 1e-5
    again = alexnet_keras.load_weights(alexnet_keras.optimize(model()), tmp_path / "fast.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), fast.get_weights()))
    if any(getattr(layer, "kernel_transposed", False) for layer in fast.layers):
        with pytest.raises(ValueError, match=r"alexnet_keras.optimize\(\).*use .safetensors"):
            alexnet_keras.load_weights(model(), tmp_path / "fast.weights.h5")
    else:  # a backend without XLA: optimize's model is a plain copy
        assert rel_error(expected, alexnet_keras.load_weights(model(), tmp_path / "fast.weights.h5").predict(x, verbose=0)) <= 1e-6
    fast.save(tmp_path / "fast.keras")
    reloaded = keras.saving.load_model(tmp_path / "fast.keras", safe_mode=True)
    assert all(np.array_equal(a, b) for a, b in zip(reloaded.get_weights(), fast.get_weights()))


def test_optimized_keras_model_trains():
    """``fit`` runs on the fast model with the plain model's compile settings; the plain model's
    weights stay where they were."""
    import keras

    import alexnet_keras

    model = alexnet_keras.build("paper", num_classes=4)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    fast = alexnet_keras.optimize(model)
    assert fast.compiled and fast.loss == model.loss
    x = np.random.default_rng(3).standard_normal((2, 227, 227, 3)).astype(np.float32)
    history = fast.fit(x, np.array([0, 3]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    trained = {w.path: keras.ops.convert_to_numpy(w) for w in fast.trainable_weights}
    untouched = {w.path: b for w, b in zip(model.weights, before)}
    assert all(not np.array_equal(trained[p], untouched[p].T if trained[p].shape != untouched[p].shape else untouched[p])
               for p in trained), "every weight of the fast model moves in a step of SGD"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_optimized_keras_model_predicts_what_it_computes():
    import keras

    import alexnet_keras

    model = alexnet_keras.build("paper", num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 227, 227, 3)).astype(np.float32)
    called = keras.ops.convert_to_numpy(model(x, training=False))
    plain = model.predict(x, verbose=0)
    fast = alexnet_keras.optimize(model)
    assert rel_error(called, plain) <= 1e-5
    assert rel_error(called, fast.predict(x, verbose=0)) <= 1e-5
    assert rel_error(called, keras.ops.convert_to_numpy(fast(x, training=False))) <= 1e-5


def test_keras_predict_is_keras_predict(monkeypatch):
    """``predict`` adds the input check and the empty batch, and otherwise hands everything to
    Keras's own (no loop of ours)."""
    import keras

    import alexnet_keras

    model = alexnet_keras.build("cifar", num_classes=7)
    x = np.random.default_rng(1).standard_normal((5, 32, 32, 3)).astype(np.float32)
    calls = []
    original = keras.Model.predict

    def spy(self, *args, **kwargs):
        calls.append(args[0].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", spy)
    ours = model.predict(x, batch_size=2, verbose=0)
    assert calls == [(5, 32, 32, 3)] and ours.shape == (5, 7)
    empty = model.predict(x[:0], verbose=0)
    assert empty.shape == (0, 7) and empty.dtype == np.float32 and len(calls) == 1
    with pytest.raises(ValueError, match="NHWC"):
        model.predict(x.transpose(0, 3, 1, 2), verbose=0)


@pytest.mark.parametrize("variant", ["cifar", "paper"])  # paper: its LocalResponseNormalization layer
def test_optimized_keras_model_saves_and_reloads_in_safe_mode(variant, tmp_path):
    """XLA is a setting of the running model, not of the file: the reloaded fast model has the same
    layers and numbers, leaves XLA to Keras again, and takes ``optimize`` again."""
    import keras

    import alexnet_keras
    from alexnet_spec import get_spec

    model = alexnet_keras.build(variant, num_classes=10)
    x = np.random.default_rng(2).standard_normal((2, *get_spec(variant).input_shape_nhwc)).astype(np.float32)
    plain = keras.ops.convert_to_numpy(model(x, training=False))
    keras_auto = bool(model.jit_compile)
    fast = alexnet_keras.optimize(model)
    fast.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded) is type(model) and loaded.variant == variant
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in fast.layers]
    assert [w.path for w in loaded.weights] == [w.path for w in fast.weights]
    assert bool(loaded.jit_compile) is keras_auto
    assert rel_error(plain, loaded.predict(x, verbose=0)) <= 1e-5
    again = alexnet_keras.optimize(loaded)  # already fast: copied as it is, XLA on again
    assert [type(layer) for layer in again.layers] == [type(layer) for layer in fast.layers]
    assert rel_error(plain, again.predict(x, verbose=0)) <= 1e-5


def test_optimized_keras_model_exports_a_savedmodel(tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("checked on the tensorflow backend, where a SavedModel is native")
    import tensorflow as tf

    import alexnet_keras

    model = alexnet_keras.optimize(alexnet_keras.build("torchvision", num_classes=10, input_shape=(64, 64, 3)))
    assert model.jit_compile
    x = np.random.default_rng(3).standard_normal((2, 64, 64, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: it owns the variables serve reads
    served = reloaded.serve(x).numpy()
    assert rel_error(expected, served) <= 1e-5
