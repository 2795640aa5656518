"""paper: both frameworks against a float64 run, parity per layer, and proof the check can fail."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alexnet_keras
import alexnet_torch
import parity
from parity.testing import assert_parity
from tests.reference import rel_error, torch_float64


def test_each_framework_is_at_the_fp32_floor_against_float64(paper_torch, paper_keras, paper_batch):
    ref = torch_float64(paper_torch, paper_batch)
    with torch.no_grad():
        t = paper_torch(torch.from_numpy(paper_batch)).numpy()
    k = paper_keras.predict(paper_batch.transpose(0, 2, 3, 1), verbose=0)
    assert rel_error(ref, t) < 1e-5
    assert rel_error(ref, k) < 1e-5
    assert rel_error(t, k) < 1e-5


def test_every_layer_agrees(paper_torch, paper_keras, paper_batch):
    report = assert_parity(paper_torch, paper_keras, paper_batch)
    assert len(report.rows) == 22 and report.rows[-1].layer == "predictions"
    assert report.rows[0].torch_shape == (2, 96, 55, 55) and report.rows[0].keras_shape == (2, 55, 55, 96)
    assert report.rows[-1].max_rel < 1e-5
    assert sum(r.params for r in report.rows) == 60_965_224


def test_round_trip_is_bit_identical(paper_torch, paper_keras):
    back = parity.keras_to_torch(paper_keras)
    for (key, a), (key_b, b) in zip(paper_torch.state_dict().items(), back.state_dict().items()):
        assert key == key_b and torch.equal(a, b), key


def test_paper_lrn_flavour_is_carried_both_ways(paper_batch):
    module = parity.randomize_torch(alexnet_torch.build("paper", lrn="paper"), seed=5)
    model = parity.torch_to_keras(module)
    assert model.get_layer("norm1").k == 2.0 and model.options == {"lrn": "paper"}
    assert parity.keras_to_torch(model).options == {"lrn": "paper"}
    assert_parity(module, model, paper_batch)


def test_the_documents_own_class_ports(paper_batch):
    from tests.reference import DocumentAlexNet

    doc = parity.randomize_torch(DocumentAlexNet(), seed=2).eval()
    model = parity.torch_to_keras(doc)  # variant and LRN flavour inferred from the module
    assert model.variant == "paper" and model.options == {"lrn": "caffe"}
    assert_parity(doc, model, paper_batch)


def test_a_wrong_lrn_convention_is_caught(paper_torch, paper_batch):
    """TensorFlow's convention (alpha not divided by size) on the Keras side must fail at norm1."""
    wrong = parity.torch_to_keras(paper_torch)
    layer = wrong.get_layer("norm1")
    layer.alpha = layer.alpha * layer.size
    report = parity.compare(paper_torch, wrong, paper_batch)
    assert not report.ok and report.first_failure.layer == "norm1"
    with pytest.raises(AssertionError, match="first diverging layer norm1"):
        assert_parity(paper_torch, wrong, paper_batch)


def test_a_wrong_flatten_order_is_caught(paper_torch, paper_batch):
    """Transposing fc1 without permuting C,H,W -> H,W,C is the classic silent bug."""
    wrong = parity.torch_to_keras(paper_torch)
    w = paper_torch.classifier[0].weight.detach().numpy()
    wrong.get_layer("fc1").kernel.assign(w.T)
    report = parity.compare(paper_torch, wrong, paper_batch)
    assert not report.ok and report.first_failure.layer == "fc1"


@pytest.mark.slow  # a sweep over what test_every_layer_agrees fixes: make test-all
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 3), num_classes=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_parity_holds_for_any_batch_classes_and_weights(batch, num_classes, seed):
    module = parity.randomize_torch(alexnet_torch.build("paper", num_classes=num_classes), seed=seed)
    model = parity.torch_to_keras(module)
    assert model.output_shape == (None, num_classes)
    x = parity.random_batch((batch, 3, 227, 227), seed=seed + 1)
    assert_parity(module, model, x)
    back = parity.keras_to_torch(model)
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), back.state_dict().values()))


def test_keras_to_torch_from_a_keras_built_model(paper_batch):
    """The other direction: start in Keras with its own initialization."""
    import keras

    keras.utils.set_random_seed(4)
    model = alexnet_keras.build("paper", num_classes=12)
    module = parity.keras_to_torch(model)
    assert module.classifier[6].out_features == 12
    assert_parity(module, model, paper_batch)
    # and the Keras weights came through unchanged
    np.testing.assert_array_equal(
        model.get_layer("conv2").kernel.numpy(), module.features[4].weight.detach().numpy().transpose(2, 3, 1, 0)
    )
