import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import alexnet_keras
from alexnet_keras import LocalResponseNormalization
from alexnet_spec import LRN_FLAVOURS, get_spec
from alexnet_spec.variants import PAPER_INIT_ONE_BIAS, PAPER_INIT_STD
from tests.reference import subprocess_env


def test_parameter_count_and_names():
    model = alexnet_keras.build("paper")
    assert model.count_params() == 60_965_224
    assert model.input_shape == (None, 227, 227, 3)
    names = [layer.name for layer in model.layers if layer.weights]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "predictions"]
    assert model.get_layer("conv2").groups == 2


@pytest.mark.parametrize("flavour", sorted(LRN_FLAVOURS))
@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 40), size=st.sampled_from([1, 2, 3, 5, 7]), scale=st.floats(0.1, 100.0))
def test_lrn_matches_pytorch_exactly(flavour, channels, size, scale):
    p = LRN_FLAVOURS[flavour]
    x = (np.random.default_rng(channels).random((2, 3, 4, channels)) * scale).astype(np.float32)
    ours = LocalResponseNormalization(size, p.alpha, p.beta, p.k)(x)
    ref = torch.nn.functional.local_response_norm(
        torch.from_numpy(x.transpose(0, 3, 1, 2)).double(), size, p.alpha, p.beta, p.k
    ).numpy().transpose(0, 2, 3, 1)
    ours = keras.ops.convert_to_numpy(ours)
    assert np.max(np.abs(ours - ref)) <= 4e-7 * np.max(np.abs(ref))


def test_lrn_layer_serializes():
    layer = LocalResponseNormalization(5, 5e-4, 0.75, 2.0, name="n")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, LocalResponseNormalization)
    assert (clone.size, clone.alpha, clone.beta, clone.k) == (5, 5e-4, 0.75, 2.0)
    config = LocalResponseNormalization(np.int64(5), 1, 0.75, 2).get_config()  # our get_config: plain numbers
    assert {k: (type(v), v) for k, v in config.items() if k in ("size", "alpha", "k", "axis")} == {
        "size": (int, 5), "alpha": (float, 1.0), "k": (float, 2.0), "axis": (int, -1)}


def test_keras_file_reloads_in_a_fresh_process(tmp_path):
    model = alexnet_keras.build("paper", num_classes=10, lrn="paper")
    x = np.random.default_rng(0).standard_normal((1, 227, 227, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    model.save(tmp_path / "m.keras")
    code = textwrap.dedent(
        f"""
        import numpy as np, keras
        import alexnet_keras  # registers the custom layers
        m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True)
        y = keras.ops.convert_to_numpy(m(np.load({str(tmp_path / 'x.npy')!r})))
        assert type(m).__name__ == "AlexNetModel" and m.variant == "paper", (type(m), m.variant)
        assert m.options == {{"lrn": "paper"}}, m.options
        assert np.array_equal(y, np.load({str(tmp_path / 'y.npy')!r}))
        print("reloaded")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert out.returncode == 0 and "reloaded" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 224, 224, 3), ["227x227", "224x224", "'torchvision'"]),
        ((1, 3, 227, 227), ["NCHW", "transpose(x, (0, 2, 3, 1))"]),
        ((1, 227, 227, 1), ["3 input channels", "found 1"]),
        ((227, 227, 3), ["NHWC batch", "x[None]"]),
    ],
)
def test_bad_inputs_say_what_to_do(shape, words):
    model = alexnet_keras.build("paper")
    for call in (model, lambda x: model.predict(x, verbose=0)):
        with pytest.raises(ValueError) as err:
            call(np.zeros(shape, np.float32))
        for word in words:
            assert word in str(err.value)


def test_paper_initialization():
    keras.utils.set_random_seed(0)
    model = alexnet_keras.build("paper", init="paper")
    names = get_spec("paper").weighted_layers
    biases = [float(np.mean(model.get_layer(n).bias.numpy())) for n in names]
    assert biases == [1.0 if n in PAPER_INIT_ONE_BIAS else 0.0 for n in names] == [0, 1, 0, 1, 1, 1, 1, 0]
    kernel = model.get_layer("fc1").kernel.numpy()
    assert abs(kernel.std() - PAPER_INIT_STD) < 1e-4


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="AutoGraph is TensorFlow's")
def test_tf_function_converts_the_models_own_methods():
    """tf.function runs AutoGraph over a model's __call__; one it cannot convert warns on every trace
    ("AutoGraph could not transform ... Please report this to the TensorFlow team")."""
    import tensorflow as tf

    for method in (alexnet_keras.AlexNetModel.__call__, alexnet_keras.AlexNetModel.predict):
        tf.autograph.to_code(method)  # raises ConversionError on what AutoGraph cannot convert
    model = alexnet_keras.build("cifar")
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    traced = tf.function(lambda t: model(t, training=False))
    np.testing.assert_allclose(traced(x).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
