"""The fast paths compute exactly what the plain ones do: the banded-matmul LocalResponseNorm in
both frameworks against PyTorch's own in float64, and the models' default fast settings."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import alexnet_torch
from alexnet_spec import LRN_FLAVOURS
from alexnet_torch.layers import LocalResponseNorm, channels_last_on_cpu
from tests.reference import DocumentAlexNet, rel_error

shapes = st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 6), st.integers(1, 6))
lrn_args = st.one_of(
    st.sampled_from([(p.size, p.alpha, p.beta, p.k) for p in LRN_FLAVOURS.values()]),
    st.tuples(st.integers(1, 8), st.floats(1e-5, 1.0), st.floats(0.1, 2.0), st.floats(0.5, 3.0)),
)


def _input(shape, scale, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, args=lrn_args, scale=st.floats(0.01, 100.0), seed=st.integers(0, 99), channels_last=st.booleans())
def test_torch_lrn_equals_pytorch_in_float64(shape, args, scale, seed, channels_last):
    x = _input(shape, scale, seed)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours = LocalResponseNorm(*args)(x)
    ref = F.local_response_norm(x, *args)
    assert ours.shape == ref.shape
    assert rel_error(ref, ours) <= 1e-13


@pytest.mark.parametrize("flavour", sorted(LRN_FLAVOURS))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("channels", [96, 256])  # both sides of MATMUL_MAX_CHANNELS
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


def test_torch_lrn_gradients_and_other_ranks_match():
    x = _input((2, 9, 3, 4), 5.0, 1).requires_grad_()
    args = (5, 0.3, 0.75, 1.0)
    (g_ours,) = torch.autograd.grad(LocalResponseNorm(*args)(x).square().sum(), x)
    (g_ref,) = torch.autograd.grad(F.local_response_norm(x, *args).square().sum(), x)
    assert rel_error(g_ref, g_ours) <= 1e-12
    for shape in [(2, 7, 5), (2, 7, 3, 2, 2)]:  # not 4-D: PyTorch's own code path
        y = _input(shape, 5.0, 2)
        assert torch.equal(LocalResponseNorm(*args)(y), F.local_response_norm(y, *args))


def test_torch_lrn_is_a_drop_in():
    ours, theirs = LocalResponseNorm(5, 1e-4, 0.75, 1.0), torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    assert isinstance(ours, torch.nn.LocalResponseNorm)
    assert repr(ours) == repr(theirs) and not list(ours.state_dict())


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
    ours = keras.ops.convert_to_numpy(layer(x.numpy().transpose(0, 2, 3, 1)))
    assert ours.dtype == np.float64
    assert rel_error(ref, ours) <= 1e-13


def test_paper_model_in_float64_is_the_documents():
    """The whole fast path (channels_last, fast LRN) in float64 against the document's class."""
    torch.manual_seed(0)
    doc = DocumentAlexNet().double().eval()
    ours = alexnet_torch.build("paper").double().eval()
    ours.load_state_dict(doc.state_dict())
    x = _input((1, 3, 227, 227), 1.0, 3)
    with torch.inference_mode():
        assert rel_error(doc(x), ours(x)) <= 1e-12


def test_paper_model_runs_channels_last_on_cpu_without_being_asked():
    model = alexnet_torch.build("paper").eval()
    conv = model.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    handle = conv.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, 227, 227))
    finally:
        handle.remove()
    assert seen == [True]
    x = torch.zeros(1, 3, 4, 4)
    assert channels_last_on_cpu(x).is_contiguous(memory_format=torch.channels_last)
    image = x[0]  # 3-D: left alone
    assert channels_last_on_cpu(image) is image


def test_keras_model_predicts_through_xla_by_default():
    import keras

    import alexnet_keras

    model = alexnet_keras.build("paper", num_classes=10)
    assert model.jit_compile is (keras.backend.backend() == "tensorflow")
    model.compile(loss="categorical_crossentropy")
    assert model.jit_compile is (keras.backend.backend() == "tensorflow")
    x = np.random.default_rng(0).standard_normal((2, 227, 227, 3)).astype(np.float32)
    called = keras.ops.convert_to_numpy(model(x, training=False))
    predicted = model.predict(x, verbose=0)
    assert rel_error(called, predicted) <= 1e-5
