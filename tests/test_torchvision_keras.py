"""The torchvision variant in Keras: keras.applications conventions, adaptive pooling, weight files."""

import keras
import numpy as np
import pytest
import torch

import alexnet_keras
from alexnet_spec import checksum, imagenet
from alexnet_spec.files import write_sidecar

WEIGHTED = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "predictions"]


def test_layers_and_parameters():
    model = alexnet_keras.AlexNet()
    assert model.count_params() == imagenet.IMAGENET1K_V1.num_params == 61_100_840
    assert model.input_shape == (None, 224, 224, 3) and model.name == "alexnet"
    assert [layer.name for layer in model.layers if layer.weights] == WEIGHTED
    assert model.get_layer("predictions").activation.__name__ == "softmax"
    assert model.get_layer("conv1_pad").padding == ((2, 2), (2, 2))
    # build() returns logits, like torchvision's model, so parity compares like with like
    assert alexnet_keras.build("torchvision").get_layer("predictions").activation.__name__ == "linear"


@pytest.mark.parametrize("hw", [(7, 8), (1, 1), (13, 13), (3, 9), (11, 15), (6, 6)])
def test_adaptive_pooling_has_pytorchs_bin_edges(hw):
    """7x8 is the map a 257x301 image gives; 1x1 a 63x63 one (pooling then repeats values)."""
    x = np.random.default_rng(hw[0] * 100 + hw[1]).random((2, *hw, 5)).astype(np.float32)
    ours = keras.ops.convert_to_numpy(keras.layers.AdaptiveAveragePooling2D((6, 6))(x))
    ref = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)).double(), (6, 6))
    ref = ref.numpy().transpose(0, 2, 3, 1)
    assert np.max(np.abs(ours - ref)) <= 3e-7 * np.max(np.abs(ref))


def test_feature_extractor_conventions():
    base = alexnet_keras.AlexNet(include_top=False)
    assert base.output_shape == (None, None, None, 256)
    out = base(np.zeros((1, 257, 301, 3), np.float32))
    assert tuple(out.shape) == (1, 7, 8, 256)
    assert alexnet_keras.AlexNet(include_top=False, pooling="avg").output_shape == (None, 256)
    assert alexnet_keras.AlexNet(include_top=False, pooling="max", input_shape=(63, 63, 3)).output_shape == (None, 256)
    tensor = keras.Input((100, 120, 3))
    assert alexnet_keras.AlexNet(input_tensor=tensor, classes=7).output_shape == (None, 7)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"input_shape": (62, 62, 3)}, ["at least 63x63"]),
        ({"input_shape": (224, 224, 1)}, ["(height, width, 3)"]),
        ({"input_shape": (None, None, 3)}, ["include_top=True needs a known height and width"]),
        ({"weights": "imagenet", "classes": 10}, ["classes=10", "include_top=False"]),
        ({"weights": "nowhere.safetensors"}, ["not an existing file"]),
        ({"pooling": "mean", "include_top": False}, ["'avg' or 'max'"]),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, words):
    with pytest.raises(ValueError) as err:
        alexnet_keras.AlexNet(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_bad_inputs_say_what_to_do():
    model = alexnet_keras.build("torchvision")
    with pytest.raises(ValueError, match="expects 224x224 inputs; found 257x301.*input_shape=\\(H, W, 3\\)"):
        model(np.zeros((1, 257, 301, 3), np.float32))
    with pytest.raises(ValueError, match="looks like NCHW"):
        model(np.zeros((1, 3, 224, 224), np.float32))


def test_imagenet_weights_missing_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    expected = tmp_path / "kh" / "models" / "alexnet_torchvision_imagenet1k_v1.safetensors"
    with pytest.raises(FileNotFoundError) as err:
        alexnet_keras.AlexNet(weights="imagenet")
    message = str(err.value)
    assert f"alexnet-parity port --variant torchvision --weights IMAGENET1K_V1 {expected}" in message
    assert "does not exist" in message


def test_preprocess_input_is_torchvisions_normalization():
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3)).astype(np.float32)
    mean, std = np.array(imagenet.MEAN, np.float32), np.array(imagenet.STD, np.float32)
    expected = (x / np.float32(255) - mean) / std
    assert np.array_equal(alexnet_keras.preprocess_input(x), expected)
    tensor = keras.ops.convert_to_numpy(alexnet_keras.preprocess_input(keras.ops.convert_to_tensor(x)))
    assert np.max(np.abs(tensor - expected)) < 1e-6


def test_decode_predictions():
    p = np.zeros((1, 1000), np.float32)
    p[0, 281], p[0, 7] = 0.9, 0.1
    top = alexnet_keras.decode_predictions(keras.ops.convert_to_tensor(p), top=3)
    assert [(i, name) for i, name, _ in top[0][:2]] == [(281, "tabby"), (7, "cock")]
    assert len(top[0]) == 3


def test_checksum_sidecar(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    write_sidecar(path)
    assert checksum.verify(path) == checksum.sha256(path)
    assert (tmp_path / "w.bin.sha256").read_text().endswith("  w.bin\n")  # sha256sum -c reads it
    path.write_bytes(b"weightz")
    with pytest.raises(ValueError, match="does not match its checksum"):
        checksum.verify(path)
    (tmp_path / "w.bin.sha256").unlink()
    assert checksum.verify(path) is None
    with pytest.raises(ValueError, match="no checksum file"):
        checksum.verify(path, required=True)
