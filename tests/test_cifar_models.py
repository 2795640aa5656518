"""The cifar network in both frameworks: the document's Keras code, PyTorch's twin, inference parity."""

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import alexnet_keras
import alexnet_torch
from alexnet_spec import get_spec
from alexnet_spec.tables import get_table
from parity import compare, keras_to_torch, random_batch, randomize_torch, torch_to_keras
from tests.reference import rel_error, torch_float64


def document_cifar_model():
    """The source document's "Building from Scratch" Keras code, verbatim but for the imports
    (keras.layers) and the final model.summary()."""
    from keras.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D

    model = keras.Sequential()

    #1st Convolutional Layer
    model.add(Conv2D(filters=96, input_shape=(32,32,3), kernel_size=(11,11), strides=(4,4), padding='same'))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    model.add(MaxPooling2D(pool_size=(2,2), strides=(2,2), padding='same'))

    #2nd Convolutional Layer
    model.add(Conv2D(filters=256, kernel_size=(5, 5), strides=(1,1), padding='same'))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    model.add(MaxPooling2D(pool_size=(2,2), strides=(2,2), padding='same'))

    #3rd Convolutional Layer
    model.add(Conv2D(filters=384, kernel_size=(3,3), strides=(1,1), padding='same'))
    model.add(BatchNormalization())
    model.add(Activation('relu'))

    #4th Convolutional Layer
    model.add(Conv2D(filters=384, kernel_size=(3,3), strides=(1,1), padding='same'))
    model.add(BatchNormalization())
    model.add(Activation('relu'))

    #5th Convolutional Layer
    model.add(Conv2D(filters=256, kernel_size=(3,3), strides=(1,1), padding='same'))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    model.add(MaxPooling2D(pool_size=(2,2), strides=(2,2), padding='same'))

    #Passing it to a Fully Connected layer
    model.add(Flatten())
    # 1st Fully Connected Layer
    model.add(Dense(4096, input_shape=(32,32,3,)))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    # Add Dropout to prevent overfitting
    model.add(Dropout(0.4))

    #2nd Fully Connected Layer
    model.add(Dense(4096))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    #Add Dropout
    model.add(Dropout(0.4))

    #3rd Fully Connected Layer
    model.add(Dense(1000))
    model.add(BatchNormalization())
    model.add(Activation('relu'))
    #Add Dropout
    model.add(Dropout(0.4))

    #Output Layer
    model.add(Dense(10))
    model.add(BatchNormalization())
    model.add(Activation('softmax'))
    return model


def random_keras_weights(model, seed):
    """Every weight random, BatchNorm moving statistics included (variance positive)."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        shape = tuple(w.shape)
        if w.path.endswith(("moving_variance", "gamma")):
            weights.append(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        elif len(shape) > 1:
            weights.append((rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))).astype(np.float32))
        else:
            weights.append((rng.standard_normal(shape) * 0.1).astype(np.float32))
    return weights


@pytest.fixture(scope="module")
def cifar_torch():
    return randomize_torch(alexnet_torch.build("cifar"), seed=0).eval()


@pytest.fixture(scope="module")
def cifar_keras(cifar_torch):
    return torch_to_keras(cifar_torch)


def test_parameter_counts():
    model = alexnet_keras.build("cifar")
    assert model.count_params() == 25_730_506
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 21_156
    module = alexnet_torch.build("cifar")
    assert sum(p.numel() for p in module.parameters()) == 25_730_506 - 21_156
    running = sum(b.numel() for name, b in module.named_buffers() if "running" in name)
    assert running == 21_156


def test_names_follow_the_spec_and_table():
    spec, table = get_spec("cifar"), get_table("cifar")
    model = alexnet_keras.build("cifar")
    assert [layer.name for layer in model.layers if layer.weights] == list(spec.weighted_layers) == list(table.keras_layers())
    module = alexnet_torch.build("cifar")
    keys = [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]
    assert keys == list(table.torch_keys())
    bn = spec.batchnorm  # the literal settings at every layer of both models are the spec's
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 9 and all(m.eps == bn.epsilon and abs(m.momentum - bn.torch_momentum) < 1e-12 for m in bns)
    keras_bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(keras_bns) == 9 and all((b.epsilon, b.momentum) == (bn.epsilon, bn.momentum) for b in keras_bns)


def test_the_documents_weights_load_by_set_weights_and_compute_the_same():
    document = document_cifar_model()
    ours = alexnet_keras.build("cifar")
    assert [tuple(w.shape) for w in ours.get_weights()] == [tuple(w.shape) for w in document.get_weights()]
    document.set_weights(random_keras_weights(document, seed=5))
    ours.set_weights(document.get_weights())
    x = np.random.default_rng(6).standard_normal((4, 32, 32, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(document(x, training=False))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours(x, training=False)), expected)
    # and PyTorch, through the port, computes it too
    module = keras_to_torch(ours).eval()
    with torch.no_grad():
        probabilities = module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert rel_error(expected, probabilities) < 1e-5


@pytest.mark.parametrize("logits", [False, True])
def test_inference_parity_against_float64(logits):
    module = randomize_torch(alexnet_torch.build("cifar", logits=logits), seed=1).eval()
    model = torch_to_keras(module)
    assert model.options == {"logits": logits}
    x = random_batch((4, 3, 32, 32), seed=2)
    report = compare(module, model, x, reference=True)
    assert report.ok, report
    assert len(report.rows) == 33 - logits
    for row in report.rows:  # each framework near the fp32 floor on its own, not just close to the other
        assert row.torch_vs_f64 < 1e-5 and row.keras_vs_f64 < 1e-5, row
    reference = torch_float64(module, x)
    keras_out = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1)))
    assert rel_error(reference, keras_out) < 1e-5
    if not logits:
        np.testing.assert_allclose(reference.sum(axis=1), 1.0, rtol=1e-12)


def test_logits_option_is_the_softmax_input(cifar_torch):
    logits_model = alexnet_torch.build("cifar", logits=True).eval()
    logits_model.load_state_dict(cifar_torch.state_dict())
    x = torch.from_numpy(random_batch((3, 3, 32, 32), seed=3))
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(logits_model(x), dim=1), cifar_torch(x))
    keras_logits = torch_to_keras(logits_model)
    assert keras_logits.layers[-1].name == "predictions_bn"
    with pytest.raises(TypeError, match="logits must be True or False"):
        alexnet_torch.build("cifar", logits="yes")
    with pytest.raises(TypeError, match="logits must be True or False"):
        alexnet_keras.build("cifar", logits=1)


@pytest.mark.slow  # a sweep over what test_inference_parity_against_float64 fixes: make test-all
@settings(max_examples=3, deadline=None)
@given(batch=st.integers(1, 9), seed=st.integers(0, 2**16), gain=st.sampled_from([0.5, 1.0, 3.0]))
def test_parity_over_batch_sizes_and_weights(batch, seed, gain):
    module = randomize_torch(alexnet_torch.build("cifar", logits=True), seed=seed, gain=gain).eval()
    report = compare(module, torch_to_keras(module), random_batch((batch, 3, 32, 32), seed + 1), reference=True)
    assert report.ok, report


def test_round_trip_is_bit_identical(cifar_torch, cifar_keras):
    back = keras_to_torch(cifar_keras)
    for (k, a), (k2, b) in zip(cifar_torch.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k


def test_weight_files_round_trip(tmp_path, cifar_torch):
    from parity import files

    alexnet_torch.save_weights(cifar_torch, tmp_path / "m.pt")
    record = files.read(tmp_path / "m.pt")
    assert record.variant == "cifar"
    files.write(record, tmp_path / "m.weights.h5")
    again = files.read(tmp_path / "m.weights.h5")
    assert again.variant == "cifar" and again.options == {"logits": False}
    for key, value in record.state.items():
        np.testing.assert_array_equal(again.state[key], value)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 3, 64, 64), ["32x32", "found 64x64", "1x1x256"]),
        ((1, 32, 32, 3), ["NHWC", "permute(0, 3, 1, 2)"]),
        ((1, 1, 32, 32), ["3 input channels", "found 1"]),
        ((3, 32, 32), ["NCHW batch", "unsqueeze(0)"]),
    ],
)
def test_bad_inputs_torch(shape, words):
    with pytest.raises(ValueError) as err:
        alexnet_torch.build("cifar")(torch.zeros(shape))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 64, 64, 3), ["32x32", "found 64x64", "1x1x256"]),
        ((1, 3, 32, 32), ["NCHW", "transpose(x, (0, 2, 3, 1))"]),
        ((32, 32, 3), ["NHWC batch", "x[None]"]),
    ],
)
def test_bad_inputs_keras(shape, words):
    model = alexnet_keras.build("cifar")
    with pytest.raises(ValueError) as err:
        model(np.zeros(shape, np.float32))
    for word in words:
        assert word in str(err.value)


def test_cli_checks_cifar_in_both_output_modes(capsys):
    from alexnet_cli.parity import main

    assert main(["check", "--variant", "cifar"]) == 0
    assert "PASS: cifar" in capsys.readouterr().out
    assert main(["check", "--variant", "cifar", "--option", "logits=true", "--json"]) == 0
    assert main(["check", "--variant", "cifar", "--option", "logits=maybe"]) == 2
    assert "logits must be True or False" in capsys.readouterr().err
