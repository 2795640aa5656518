"""torchvision's AlexNet ported to Keras: parity at several sizes, and the same photograph giving
the same top-5 through both pipelines, preprocessing included."""

import json

import keras
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage import data

import alexnet_keras
import alexnet_torch
from alexnet_spec import imagenet
from parity import compare, random_batch, randomize_torch, torch_to_keras
from tests.reference import torch_float64

PHOTOS = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
def tv_torch():
    """torchvision's own class, every parameter randomized (seeded)."""
    return randomize_torch(torchvision.models.alexnet(), seed=0).eval()


@pytest.fixture(scope="module")
def tv_keras(tv_torch):
    return torch_to_keras(tv_torch)


@pytest.mark.parametrize("size", [(224, 224), (257, 301), (63, 63)])
def test_ported_torchvision_model_agrees(tv_torch, size):
    keras_model = tv_keras_at(tv_torch, size)
    report = compare(tv_torch, keras_model, random_batch((2, 3, *size), seed=1), reference=True)
    assert report.ok, f"{report.verdict()}\n{report}"
    assert [r.layer for r in report.rows][-4:] == ["fc2_dropout", "fc2", "fc2_relu", "predictions"]
    assert report.output.max_rel < 1e-5 and report.output.keras_vs_f64 < 1e-5


@pytest.mark.parametrize("size", [(63, 63), (80, 300), (94, 94), (95, 95)])
def test_predict_at_small_sizes_is_torchvisions_output(tv_torch, size):
    """Inputs of 63 to 94 pixels leave pool5 1 pixel high or wide (95: 2 pixels). ``predict`` runs
    the model compiled, where Keras's adaptive pooling of one pixel failed."""
    keras_model = tv_keras_at(tv_torch, size)
    x = random_batch((2, 3, *size), seed=2)
    with torch.no_grad():
        fp32 = tv_torch(torch.from_numpy(x)).numpy()
    got = keras_model.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), verbose=0)
    for expected in (fp32, torch_float64(tv_torch, x)):  # torchvision's output, and the float64 reference
        assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))


def tv_keras_at(module, size):
    return torch_to_keras(module, input_shape=(*size, 3))


def _photo(name):
    return Image.fromarray(getattr(data, name)())


@pytest.mark.parametrize("name", PHOTOS)
def test_same_photo_same_top5_in_both_pipelines(tv_torch, tv_keras, name):
    photo = _photo(name)
    x_torch = alexnet_torch.load_image(photo)[None]
    x_keras = alexnet_keras.preprocess_input(alexnet_keras.load_image(photo)[None])
    assert np.max(np.abs(x_torch.numpy() - x_keras.transpose(0, 3, 1, 2))) <= 1e-6
    with torch.no_grad():
        p_torch = torch.softmax(tv_torch(x_torch).double(), 1).numpy()
    logits = keras.ops.convert_to_numpy(tv_keras(x_keras))  # not np.asarray: a torch tensor with grad on torch
    p_keras = torch.softmax(torch.from_numpy(logits.astype(np.float64)), 1).numpy()
    top_torch = alexnet_torch.decode_predictions(p_torch)[0]
    top_keras = alexnet_keras.decode_predictions(p_keras)[0]
    assert top_torch[0][2] > 0.05  # the seeded weights give a peaked, not a flat, distribution
    assert [i for i, *_ in top_torch] == [i for i, *_ in top_keras]
    assert np.max(np.abs(p_torch - p_keras)) < 1e-5


def test_preprocessing_matches_torchvision_tensor_path_within_resampling():
    """torchvision's transforms on a uint8 tensor resample with torch's antialiased bilinear, not
    PIL's: the two differ by the rounding of the resampled pixels only."""
    t = alexnet_torch.transforms()
    for name in PHOTOS:
        photo = _photo(name)
        pil = t(photo).numpy()
        tensor = t(torch.from_numpy(np.array(photo)).permute(2, 0, 1).contiguous()).numpy()
        ours = alexnet_keras.preprocess_input(alexnet_keras.load_image(photo)).transpose(2, 0, 1)
        assert np.max(np.abs(ours - pil)) <= 1e-6
        # both round the resampled pixels to uint8; they differ by at most one 8-bit level
        # (1/255/std in normalized units), measured 0.018 max, 0.002-0.003 mean on these photos
        step = (1 / 255 / np.asarray(imagenet.STD, np.float32))[:, None, None]
        assert (np.abs(ours - tensor) <= step + 1e-6).all(), name


def test_predict_cli_both_frameworks_agree(capsys, tmp_path):
    for name in PHOTOS[:2]:
        _photo(name).save(tmp_path / f"{name}.png")
    argv = [str(tmp_path / "chelsea.png"), str(tmp_path / "coffee.png"), "--weights", "random", "--json"]
    from alexnet_cli import predict

    assert predict.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and "SEEDED RANDOM" in out["weights"]
    for result in out["results"].values():
        assert result["agree"] and result["max_input_diff"] <= 1e-6
        assert [r[0] for r in result["top"]["torch"]] == [r[0] for r in result["top"]["keras"]]
