"""Inputs a model must refuse clearly, or take as the other framework does: num_classes, dtypes,
empty batches, and non-finite values (where the two frameworks disagree by design)."""

import keras
import numpy as np
import pytest
import torch

import alexnet_keras
import alexnet_torch
import parity
from alexnet_spec import get_spec


@pytest.mark.parametrize("num_classes", [0, -1, "10", 1.5, True, np.float64(3.0)])
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_num_classes_must_be_a_positive_int(framework, num_classes):
    build = alexnet_torch.build if framework == "torch" else alexnet_keras.build
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        build("cifar", num_classes=num_classes)


def test_num_classes_is_checked_by_the_classes_themselves_too():
    for make in (lambda: alexnet_torch.AlexNetPaper(True), lambda: alexnet_torch.AlexNetCifar(0),
                 lambda: alexnet_torch.AlexNetTorchvision(2.0), lambda: alexnet_keras.AlexNetPaper("7"),
                 lambda: alexnet_keras.AlexNetCifar(-2), lambda: alexnet_keras.AlexNet(classes=False)):
        with pytest.raises(ValueError, match="positive int"):
            make()


def test_numpy_integers_are_ints():
    assert alexnet_torch.build("cifar", num_classes=np.int64(7)).classifier[-2].num_features == 7
    assert alexnet_keras.build("cifar", num_classes=np.int32(7)).output_shape == (None, 7)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_torch_names_an_integer_dtype_and_the_fix(dtype):
    x = torch.zeros(1, 3, 32, 32, dtype=dtype)
    with pytest.raises(TypeError, match=rf"found dtype {dtype}.*x\.float\(\)"):
        alexnet_torch.build("cifar").eval()(x)


def test_torch_names_a_float_dtype_that_differs_from_the_weights():
    model = alexnet_torch.build("cifar").eval()
    x = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"torch.float32 weights; found a torch.float64 input.*x.to\(torch.float32\)"):
        model(x)
    assert model.double()(x).dtype == torch.float64  # a float64 model takes float64 input


@pytest.mark.parametrize("variant", ["paper", "cifar", "torchvision"])
def test_an_empty_batch_gives_zero_rows_in_both_frameworks(variant):
    spec = get_spec(variant)
    size = spec.input_size
    with torch.no_grad():
        t = alexnet_torch.build(variant).eval()(torch.zeros(0, 3, size, size))
    model = alexnet_keras.build(variant)
    x = np.zeros((0, size, size, 3), np.float32)
    called = keras.ops.convert_to_numpy(model(x, training=False))
    predicted = model.predict(x, verbose=0)
    assert tuple(t.shape) == called.shape == predicted.shape == (0, spec.num_classes)
    assert predicted.dtype == np.float32
    with pytest.raises(ValueError, match="looks like NCHW"):  # the checks still run on an empty batch
        model.predict(np.zeros((0, 3, size, size), np.float32), verbose=0)


def test_non_finite_input_is_named_as_the_cause(paper_torch, paper_keras, paper_batch):
    x = paper_batch.copy()
    x[1, 2, 100, 7] = np.nan
    x[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite values .*first at index \(0, 0, 0, 0\)"):
        parity.compare(paper_torch, paper_keras, x)
