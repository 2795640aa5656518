"""The two PyTorch helpers the cifar network needs, each against Keras/TensorFlow itself:
SAME padding (asymmetric when the stride does not divide the overhang) and BatchNorm that trains
with Keras's moving-statistics update."""

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alexnet_torch.batchnorm import BatchNorm1dKeras, BatchNorm2dKeras
from alexnet_torch.padding import Conv2dSame, MaxPool2dSame, same_padding


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(32, 11, 4) == (3, 4)  # cifar conv1: 8x8 out, 7 pixels of padding
    assert same_padding(8, 2, 2) == (0, 0)
    assert same_padding(5, 2, 2) == (0, 1)
    assert same_padding(7, 3, 1) == (1, 1)
    assert same_padding(4, 1, 4) == (0, 0)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 19), w=st.integers(1, 19), kernel=st.integers(1, 7), stride=st.integers(1, 5))
def test_conv2d_same_matches_tensorflow_same(h, w, kernel, stride):
    rng = np.random.default_rng(h * 1000 + w * 10 + kernel)
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    conv = Conv2dSame(3, 4, kernel, stride)
    with torch.no_grad():
        ours = conv(torch.from_numpy(x)).numpy()
    kernel_hwio = conv.weight.detach().numpy().transpose(2, 3, 1, 0)
    ref = keras.ops.conv(x.transpose(0, 2, 3, 1), kernel_hwio, strides=stride, padding="same")
    ref = keras.ops.convert_to_numpy(ref).transpose(0, 3, 1, 2) + conv.bias.detach().numpy()[:, None, None]
    assert ours.shape == ref.shape == (2, 4, -(-h // stride), -(-w // stride))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 17), w=st.integers(1, 17), pool=st.integers(1, 4), stride=st.integers(1, 4))
def test_max_pool_same_matches_tensorflow_same(h, w, pool, stride):
    # all-negative inputs: zero padding instead of -inf would win the max at the borders
    x = -np.random.default_rng(h * 100 + w).random((2, 3, h, w)).astype(np.float32) - 1
    ours = MaxPool2dSame(pool, stride)(torch.from_numpy(x)).numpy()
    ref = keras.ops.max_pool(x.transpose(0, 2, 3, 1), pool, strides=stride, padding="same")
    ref = keras.ops.convert_to_numpy(ref).transpose(0, 3, 1, 2)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def test_pytorch_symmetric_padding_is_not_same_at_stride_4():
    """Why the helper exists: padding=3 or 4 on both sides gives the wrong pixels or size."""
    x = torch.randn(1, 3, 32, 32)
    conv = Conv2dSame(3, 2, 11, 4)
    with torch.no_grad():
        same = conv(x)
        for pad in (3, 4):
            symmetric = torch.nn.functional.conv2d(x, conv.weight, conv.bias, 4, pad)
            assert symmetric.shape != same.shape or not torch.allclose(symmetric, same)


@pytest.mark.parametrize("cls, shape", [(BatchNorm2dKeras, (6, 5, 3, 3)), (BatchNorm1dKeras, (6, 5))])
def test_batchnorm_trains_like_keras(cls, shape):
    """Outputs and moving statistics after three training batches, against Keras's own layer."""
    rng = np.random.default_rng(0)
    torch_bn = cls(shape[1], eps=1e-3, momentum=1 - 0.99)
    keras_bn = keras.layers.BatchNormalization(axis=1, epsilon=1e-3, momentum=0.99)
    keras_bn.build(shape)
    gamma, beta = rng.random(shape[1]) + 0.5, rng.standard_normal(shape[1])
    mean, var = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5
    with torch.no_grad():
        for p, v in zip((torch_bn.weight, torch_bn.bias, torch_bn.running_mean, torch_bn.running_var), (gamma, beta, mean, var)):
            p.copy_(torch.from_numpy(v))
    keras_bn.set_weights([gamma, beta, mean, var])
    # PyTorch's own BatchNorm with the same epsilon and momentum: differs only in the variance
    plain = getattr(torch.nn, cls.__name__.removesuffix("Keras"))(shape[1], eps=1e-3, momentum=1 - 0.99)
    plain.load_state_dict(torch_bn.state_dict())
    torch_bn.train(), plain.train()
    for step in range(3):
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        ours = torch_bn(torch.from_numpy(x)).detach().numpy()
        plain(torch.from_numpy(x))
        ref = keras.ops.convert_to_numpy(keras_bn(x, training=True))
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_bn.running_mean.numpy(), keras_bn.moving_mean.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(torch_bn.running_var.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-6, atol=1e-6)
    assert int(torch_bn.num_batches_tracked) == 3
    np.testing.assert_allclose(plain.running_mean.numpy(), keras_bn.moving_mean.numpy(), rtol=1e-6, atol=1e-6)
    drift = np.abs(plain.running_var.numpy() - keras_bn.moving_variance.numpy()).max()
    assert drift > 1e-3, drift  # the unbiased variance, 1/(n-1) larger per update
    assert list(plain.state_dict()) == list(torch_bn.state_dict())  # same keys: checkpoints interchange


def test_batchnorm_inference_is_pytorchs():
    bn = BatchNorm2dKeras(4, eps=1e-3, momentum=0.01).eval()
    ref = torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.01).eval()
    with torch.no_grad():
        for m in (bn, ref):
            m.running_mean.copy_(torch.arange(4.0))
            m.running_var.copy_(torch.arange(1.0, 5.0))
        x = torch.randn(2, 4, 3, 3)
        assert torch.equal(bn(x), ref(x))
