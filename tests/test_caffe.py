"""Caffe's bvlc_alexnet, read with our wire-format reader, against OpenCV's Caffe runtime.

The models are bvlc_alexnet-shaped files with seeded weights, written by tests/caffe_files.py in
both of Caffe's formats; OpenCV (cv2.dnn.readNetFromCaffe: its own protobuf importer and its own
layers) runs them with a deploy.prototxt written here. Nothing of ours computes OpenCV's side.
"""

import hashlib
import json

import cv2  # opencv-python-headless 4.x, in the test extra (OpenCV 5 no longer reads Caffe)
import numpy as np
import pytest

from tests import caffe_files as cf
from tests.reference import rel_error, torch_float64


RTOL = 1e-5  # of the output scale: fp32 rounding is ~1e-6 here
CAFFE_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


def caffe_batch() -> np.ndarray:
    """Caffe-style input (BGR, 0..255, mean subtracted, NCHW): scikit-image's chelsea, centre-cropped
    without resizing, and a seeded noise image."""
    from skimage import data

    photo = data.chelsea().astype(np.float32)  # 300x451 RGB
    top, left = (photo.shape[0] - 227) // 2, (photo.shape[1] - 227) // 2
    crop = photo[top:top + 227, left:left + 227, ::-1]  # RGB -> BGR
    noise = np.random.default_rng(1).uniform(0, 255, (227, 227, 3)).astype(np.float32)
    x = np.stack([crop, noise]) - CAFFE_MEAN_BGR
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32)


@pytest.fixture(scope="module")
def weights():
    return cf.random_weights(seed=0)


def write_model(folder, weights, *, v1: bool, layers=cf.ALEXNET_LAYERS, name="bvlc_alexnet.caffemodel"):
    model = folder / name
    model.write_bytes(cf.caffemodel(weights, v1=v1, layers=layers, unpacked_bias="fc8"))
    deploy = folder / f"deploy-{name}.prototxt"
    deploy.write_text(cf.deploy_prototxt(layers))
    return model, deploy


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_the_cli_ports_the_2014_format_and_torch_computes_what_opencv_computes(tmp_path, weights, capsys):
    """The model zoo's format (V1 ``layers``, legacy 4-D blob dims, an unpacked blob), through
    ``alexnet-parity port --sha1``, to a .safetensors that says paper with lrn=caffe."""
    import torch

    from alexnet_cli.parity import main
    from alexnet_spec import exchange
    from parity import files

    model, deploy = write_model(tmp_path, weights, v1=True)
    with open(model, "rb") as f:
        sha1 = hashlib.file_digest(f, "sha1").hexdigest()
    out = tmp_path / "paper-imagenet.safetensors"
    assert main(["port", str(model), str(out), "--sha1", sha1, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["variant"] == "paper" and summary["options"] == {"lrn": "caffe"}
    record = exchange.load(out)
    assert record.variant == "paper" and record.options == {"lrn": "caffe"}
    np.testing.assert_array_equal(record.state["features.4.weight"], weights["conv2"][0])  # blobs unchanged
    np.testing.assert_array_equal(record.state["classifier.6.bias"], weights["fc8"][1])

    x = caffe_batch()
    expected = cf.opencv_forward(deploy, model, x)
    with torch.no_grad():
        ours = files.torch_model(record).eval()(torch.from_numpy(x)).numpy()
    assert rel_error(expected, ours) < RTOL
    assert (ours.argmax(1) == expected.argmax(1)).all()
    # The tolerance tells inputs apart: the same photograph fed as RGB is far outside it.
    assert rel_error(expected, cf.opencv_forward(deploy, model, x[:, ::-1].copy())) > 100 * RTOL


@pytest.mark.slow
@pytest.mark.parametrize("v1", [False, True], ids=["layer-format", "2014-layers-format"])
def test_both_frameworks_match_opencv_and_float64(tmp_path, weights, v1):
    import torch

    from parity import files

    model, deploy = write_model(tmp_path, weights, v1=v1)
    record = files.read(model)
    x = caffe_batch()
    torch_model = files.torch_model(record).eval()
    with torch.no_grad():
        y_torch = torch_model(torch.from_numpy(x)).numpy()
    y_keras = np.asarray(files.keras_model(record)(x.transpose(0, 2, 3, 1), training=False))
    y_opencv = cf.opencv_forward(deploy, model, x)
    y64 = torch_float64(torch_model, x)
    errors = {"opencv": rel_error(y64, y_opencv), "torch": rel_error(y64, y_torch), "keras": rel_error(y64, y_keras),
              "torch-opencv": rel_error(y_opencv, y_torch), "keras-opencv": rel_error(y_opencv, y_keras)}
    assert max(errors.values()) < RTOL, errors
    for y in (y_opencv, y_torch, y_keras):
        assert (y.argmax(1) == y64.argmax(1)).all()
    assert y64.argmax(1)[0] != y64.argmax(1)[1], "the two images must give different classes"
    assert rel_error(y64[0], y64[1]) > 0.1  # the outputs depend on the input, not only on the biases


def test_caffenet_is_refused_by_its_layer_order(tmp_path, capsys):
    from alexnet_cli.parity import main

    model = tmp_path / "bvlc_reference_caffenet.caffemodel"
    model.write_bytes(cf.caffemodel({}, v1=True, layers=cf.caffenet_order()))
    assert main(["port", str(model), str(tmp_path / "out.safetensors")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "CaffeNet" in line and "pooled before it is normalized" in line
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.slow
def test_caffenet_computes_something_else_in_opencv(tmp_path, weights):
    """Why the refusal matters: the same blobs in CaffeNet's order are another function."""
    from alexnet_spec.caffe import CaffeError
    from parity import files

    alexnet, alexnet_deploy = write_model(tmp_path, weights, v1=False)
    caffenet, caffenet_deploy = write_model(tmp_path, weights, v1=False, layers=cf.caffenet_order(),
                                            name="caffenet.caffemodel")
    x = caffe_batch()
    assert rel_error(cf.opencv_forward(alexnet_deploy, alexnet, x), cf.opencv_forward(caffenet_deploy, caffenet, x)) > 0.01
    with pytest.raises(CaffeError, match="CaffeNet"):
        files.read(caffenet)


def test_every_shape_mismatch_is_one_line(tmp_path, capsys):
    from alexnet_cli.parity import main

    rng = np.random.default_rng(0)
    small = {"conv1": [rng.standard_normal((96, 3, 7, 7)), np.zeros(96)],  # wrong kernel size
             "conv2": [rng.standard_normal((256, 96, 5, 5)), np.zeros(256)]}  # one tower, not two
    layers = [(n, k) for n, k in cf.ALEXNET_LAYERS if n not in ("conv4",)]
    model = tmp_path / "other.caffemodel"
    model.write_bytes(cf.caffemodel(small, layers=layers))
    assert main(["port", str(model), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "conv1 weight: expected 96x3x11x11; found 96x3x7x7" in err
    assert "conv2 weight: expected 256x48x5x5; found 256x96x5x5" in err
    assert "conv4: missing" in err
    assert "layer order: expected" in err
    for name in ("conv3", "conv5", "fc6", "fc7", "fc8"):
        assert f"{name}: expected 2 blobs (weight, bias); found 0" in err
    assert not (tmp_path / "out.pt").exists()


def _valid_prefix() -> bytes:
    rng = np.random.default_rng(0)
    return cf.caffemodel({"conv1": [rng.standard_normal((96, 3, 11, 11)), np.zeros(96)]})


@pytest.mark.parametrize("content", [
    pytest.param(lambda: b"", id="empty"),
    pytest.param(lambda: _valid_prefix()[:-10], id="truncated-blob"),
    pytest.param(lambda: _valid_prefix()[:200], id="truncated-early"),
    pytest.param(lambda: b"\xff" * 64, id="endless-varint"),
    pytest.param(lambda: np.random.default_rng(3).bytes(4096), id="random-bytes"),
    pytest.param(lambda: b"\x0b" + b"\x00" * 20, id="group-wire-type"),
    pytest.param(lambda: cf.delimited(100, cf.delimited(7, cf.delimited(7, cf.delimited(1, b"\x05")) + cf.delimited(5, b"\0" * 8))),
                 id="blob-size-disagrees"),
])
def test_a_truncated_or_hostile_file_is_one_clear_line(tmp_path, capsys, content):
    from alexnet_cli.parity import main

    model = tmp_path / "bvlc_alexnet.caffemodel"
    model.write_bytes(content())
    assert main(["port", str(model), str(tmp_path / "out.safetensors")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(model) in line and ("at byte" in line or "holds no Caffe layers" in line), line
    assert not (tmp_path / "out.safetensors").exists()


def test_a_wrong_sha1_is_refused_before_reading(tmp_path, capsys):
    from alexnet_cli.parity import main

    model = tmp_path / "bvlc_alexnet.caffemodel"
    model.write_bytes(_valid_prefix())
    assert main(["port", str(model), str(tmp_path / "out.safetensors"), "--sha1", "0" * 40]) == 2
    assert "SHA-1" in _one_error_line(capsys.readouterr().err)


def test_a_binaryproto_mean_reads_in_both_dim_styles(tmp_path):
    from alexnet_spec.caffe import read_blob

    mean = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 256)).astype(np.float32)
    for legacy in (True, False):
        path = tmp_path / f"mean-{legacy}.binaryproto"
        path.write_bytes(cf.blob(mean, legacy=legacy))
        np.testing.assert_array_equal(read_blob(path), mean)


# --- Caffe's preprocessing against OpenCV's blobFromImage -------------------------------------------


def _chelsea():
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.chelsea())


def _opencv_blob(rgb: np.ndarray, *, swap: bool = True) -> np.ndarray:
    """OpenCV's own preprocessing: resize to 256x256 (INTER_LINEAR), RGB -> BGR (swapRB), the mean
    (104, 117, 123) subtracted, scale 1; then Caffe's center 227 crop (offset 14)."""
    blob = cv2.dnn.blobFromImage(rgb, 1.0, (256, 256), (104, 117, 123), swapRB=swap, crop=False)
    return blob[0, :, 14:241, 14:241]


def test_caffe_preprocessing_in_both_frameworks_is_opencvs():
    import alexnet_keras
    import alexnet_torch

    photo = _chelsea()
    ours_torch = alexnet_torch.load_image(photo, "paper", "caffe").numpy()
    ours_keras = alexnet_keras.preprocess_input(alexnet_keras.load_image(photo, "paper", "caffe")[None], mode="caffe")[0]
    ours_keras_tensor = np.asarray(alexnet_keras.preprocess_input(
        __import__("keras").ops.convert_to_tensor(alexnet_keras.load_image(photo, "paper", "caffe")[None]), mode="caffe"))[0]
    expected = _opencv_blob(np.asarray(photo, np.float32))  # float input: OpenCV's exact float resize
    assert ours_torch.shape == (3, 227, 227)
    assert np.max(np.abs(ours_torch - expected)) < 1e-3
    np.testing.assert_array_equal(ours_keras.transpose(2, 0, 1), ours_torch)
    np.testing.assert_allclose(ours_keras_tensor, ours_keras, atol=1e-5)
    # OpenCV's uint8 path rounds its fixed-point resize to whole levels: within one level.
    assert np.max(np.abs(ours_torch - _opencv_blob(np.asarray(photo)))) <= 1.0
    # The comparison sees channel order: the same photograph left RGB is far off.
    assert np.max(np.abs(ours_torch - _opencv_blob(np.asarray(photo, np.float32), swap=False))) > 10


def test_a_mean_image_is_subtracted_where_the_crop_is():
    from alexnet_training.images import CAFFE_MEAN_BGR, caffe_input

    photo = _chelsea()
    ramp = np.random.default_rng(0).uniform(-5, 5, (3, 256, 256)).astype(np.float32)
    mean = np.asarray(CAFFE_MEAN_BGR, np.float32)[:, None, None] + ramp
    got = caffe_input(photo, mean[None])  # (1, 3, 256, 256), as a .binaryproto holds it
    np.testing.assert_allclose(got, caffe_input(photo) - ramp[:, 14:241, 14:241].transpose(1, 2, 0), atol=1e-4)


def test_caffes_ten_crops_are_corners_center_and_mirrors():
    from alexnet_training.images import caffe_input, caffe_oversample

    photo = _chelsea()
    crops = caffe_oversample(photo)
    full = cv2.dnn.blobFromImage(np.asarray(photo, np.float32), 1.0, (256, 256), (104, 117, 123), swapRB=True)[0]
    full = full.transpose(1, 2, 0)
    assert crops.shape == (10, 227, 227, 3)
    for crop, (t, s) in zip(crops[:4], [(0, 0), (0, 29), (29, 0), (29, 29)]):
        assert np.max(np.abs(crop - full[t:t + 227, s:s + 227])) < 1e-3
    np.testing.assert_array_equal(crops[4], caffe_input(photo))
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])


@pytest.mark.slow
def test_predict_with_ported_caffe_weights_agrees_with_opencv(tmp_path, weights, capsys):
    """`alexnet-predict --variant paper --weights paper-imagenet.safetensors photo` in both
    frameworks: its top class is what OpenCV's Caffe runtime gives for OpenCV's own preprocessing."""
    from alexnet_cli import parity, predict

    model, deploy = write_model(tmp_path, weights, v1=False)
    out = tmp_path / "paper-imagenet.safetensors"
    assert parity.main(["port", str(model), str(out)]) == 0
    photo = tmp_path / "chelsea.png"
    _chelsea().save(photo)
    capsys.readouterr()
    assert predict.main(["--variant", "paper", "--weights", str(out), str(photo), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][str(photo)]
    assert result["agree"]
    blob = cv2.dnn.blobFromImage(np.asarray(_chelsea()), 1.0, (256, 256), (104, 117, 123), swapRB=True)
    expected = cf.opencv_forward(deploy, model, blob[:, :, 14:241, 14:241])
    assert result["top"]["torch"][0][0] == int(expected.argmax())


def test_figure_3_is_drawn_from_random_weights_one_block_per_tower(tmp_path, capsys):
    """The figure from a weight file (seeded random paper weights): each tower's block holds its own
    48 kernels, and a Caffe file's BGR kernels are shown in RGB."""
    import alexnet_torch
    from alexnet_cli.parity import main
    from alexnet_cli.plot import kernel_mosaic
    from parity.randomize import randomize_torch

    model = randomize_torch(alexnet_torch.build("paper"), seed=0)
    path = tmp_path / "paper.pt"
    alexnet_torch.save_weights(model, path)
    assert main(["kernels", str(path), "--out", str(tmp_path / "fig3.png")]) == 0
    assert (tmp_path / "fig3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    w = model.features[0].weight.detach().numpy()
    mosaic = kernel_mosaic(w)
    assert mosaic.shape == (2, 6 * 12 - 1, 8 * 12 - 1, 3)
    k49 = w[49].transpose(1, 2, 0)  # tower 2's second kernel: row 0, column 1 of the second block
    np.testing.assert_allclose(mosaic[1, 0:11, 12:23], (k49 - k49.min()) / (k49.max() - k49.min()))
    np.testing.assert_allclose(kernel_mosaic(w, "bgr"), kernel_mosaic(w[:, ::-1]))
    capsys.readouterr()
    assert main(["kernels", str(path), "--out", str(tmp_path / "fig3.png")]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err


# --- alexnet-eval with Caffe's weights: Caffe's center crop and 10-crop oversample ------------------


def _photos() -> list[np.ndarray]:
    """Two of scikit-image's photographs, neither square (so the 256x256 resize stretches them)."""
    from skimage import data

    return [data.chelsea(), data.coffee()]  # 300x451, 400x600 RGB


def _opencv_probabilities(deploy, model, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(center softmax, 10-crop mean softmax) in OpenCV's runtime on OpenCV's own preprocessing:
    blobFromImage (256x256 INTER_LINEAR, swapRB, mean 104/117/123), the crops cut by numpy as
    caffe.io.oversample cuts them (corners, center, then the five mirrored)."""
    full = cv2.dnn.blobFromImage(np.asarray(rgb, np.float32), 1.0, (256, 256), (104, 117, 123), swapRB=True)[0]
    corners = [(0, 0), (0, 29), (29, 0), (29, 29), (14, 14)]
    crops = [full[:, t:t + 227, s:s + 227] for t, s in corners]
    crops = np.stack(crops + [c[:, :, ::-1] for c in crops])
    logits = cf.opencv_forward(deploy, model, crops)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p[4], p.mean(0)


@pytest.fixture(scope="module")
def caffe_eval_setup(tmp_path_factory):
    """A bvlc_alexnet-shaped model whose fc8 rows are permuted so that the labels matter: in OpenCV,
    chelsea's 10-crop top class is class 0 and coffee's second class is class 1; its port to
    .safetensors; and an ImageNet-layout folder (1000 class folders, sorted names = class indices)
    with the two photographs in classes 0 and 1 (the only ones `--limit 2` keeps) and a 4x4 filler
    image in every other class."""
    from PIL import Image

    from alexnet_cli import parity

    root = tmp_path_factory.mktemp("caffe-eval")
    weights = cf.random_weights(seed=0)
    model, deploy = write_model(root, weights, v1=False, name="original.caffemodel")
    photos = _photos()
    p_chelsea = _opencv_probabilities(deploy, model, photos[0])[1]
    p_coffee = _opencv_probabilities(deploy, model, photos[1])[1]
    first, second = int(np.argmax(p_chelsea)), int(np.argsort(-p_coffee)[1])
    assert first != second
    order = [first, second] + [c for c in range(1000) if c not in (first, second)]
    weights["fc8"] = [weights["fc8"][0][order], weights["fc8"][1][order]]  # new class j = old class order[j]
    model, deploy = write_model(root, weights, v1=False)
    out = root / "paper-imagenet.safetensors"
    assert parity.main(["port", str(model), str(out)]) == 0

    data = root / "imagenet"
    filler = np.full((4, 4, 3), 128, np.uint8)
    for split in ("train", "val"):
        for c in range(1000):
            folder = data / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            Image.fromarray(photos[c] if split == "val" and c < 2 else filler).save(folder / "image.png")
    expected = [_opencv_probabilities(deploy, model, photo) for photo in photos]
    return {"weights": out, "caffemodel": model, "data": data, "expected": expected}


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_eval_uses_caffes_crops_for_caffes_weights_and_matches_opencv(caffe_eval_setup, framework, capsys):
    """`alexnet-eval --weights paper-imagenet.safetensors --data imagefolder:DIR --crops both` picks
    Caffe's preprocessing by itself; its center and 10-crop softmax are OpenCV's on OpenCV's own
    crops, and its accuracies are the ones OpenCV's probabilities give for the folder's labels."""
    from alexnet_cli import evaluate
    from alexnet_training.augment import Pipeline
    from alexnet_training.data import parse_data, subset
    from alexnet_training.metrics import topk_hits
    from alexnet_training.recipes import CAFFE_TEST, PAPER
    from parity import files

    s = caffe_eval_setup
    capsys.readouterr()
    assert evaluate.main(["--framework", framework, "--weights", str(s["weights"]), "--data", f"imagefolder:{s['data']}",
                          "--crops", "both", "--limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["preprocessing"] == "caffe" and result["images"] == 2
    centers = np.stack([center for center, _ in s["expected"]])
    tens = np.stack([ten for _, ten in s["expected"]])
    labels = [0, 1]
    assert result["10crop"] == {"top1": 0.5, "top5": 1.0}  # by the fc8 permutation, in OpenCV's numbers
    assert (result["center"]["top1"], result["center"]["top5"]) == tuple(h / 2 for h in topk_hits(centers, labels))

    # The softmax itself, through the pipeline alexnet-eval builds (CAFFE_TEST) and the framework's
    # own 10-crop code.
    pipeline = Pipeline(subset(parse_data(f"imagefolder:{s['data']}")[1], 2), CAFFE_TEST, train=False)
    record = files.read(s["weights"])
    if framework == "torch":
        import torch

        from alexnet_torch import training

        model = files.torch_model(record).eval()
        with torch.no_grad():
            center = torch.softmax(model(torch.from_numpy(pipeline.batch(0, 0)[0].transpose(0, 3, 1, 2).copy())), 1).numpy()
    else:
        from alexnet_keras import training

        model = files.keras_model(record)
        logits = np.asarray(model(pipeline.batch(0, 0)[0], training=False), np.float64)
        center = np.exp(logits - logits.max(1, keepdims=True))
        center /= center.sum(1, keepdims=True)
    ten = np.stack([training.ten_crop_probabilities(model, pipeline, i) for i in range(2)])
    assert np.max(np.abs(center - centers)) < 1e-4 * centers.max(), np.max(np.abs(center - centers))
    assert np.max(np.abs(ten - tens)) < 1e-4 * tens.max(), np.max(np.abs(ten - tens))
    # The comparison sees the preprocessing: the recipe's torchvision-normalized 10 crops are far off.
    torchvision_style = Pipeline(pipeline.data, PAPER.augment, train=False)
    assert np.max(np.abs(training.ten_crop_probabilities(model, torchvision_style, 0) - tens[0])) > 10 * 1e-4 * tens.max()


def test_the_caffe_pipeline_is_caffes_preprocessing_bit_for_bit():
    """CAFFE_TEST is data, not a second code path: the Pipeline's center crop and ten crops are
    caffe_input and caffe_oversample exactly; the Pipeline's center crop is OpenCV's blobFromImage."""
    from PIL import Image

    from alexnet_training.augment import Pipeline
    from alexnet_training.data import ArrayData
    from alexnet_training.images import caffe_input, caffe_oversample
    from alexnet_training.recipes import CAFFE_TEST

    photo = _photos()[1]
    pipeline = Pipeline(ArrayData(photo[None], np.array([0]), ("coffee",), "coffee"), CAFFE_TEST, train=False)
    np.testing.assert_array_equal(pipeline.transform(0, 0), caffe_input(Image.fromarray(photo)))
    np.testing.assert_array_equal(pipeline.ten_crops(0), caffe_oversample(Image.fromarray(photo)))
    blob = _opencv_blob(np.asarray(photo, np.float32))
    assert np.max(np.abs(pipeline.transform(0, 0).transpose(2, 0, 1) - blob)) < 1e-3


def test_auto_preprocessing_reads_the_port_record_not_the_lrn_option(tmp_path):
    """A .caffemodel says caffe, and so does a .safetensors whose metadata records Caffe's input (as
    `port` writes it from one); a paper network of our own, whose options hold its default
    lrn="caffe" too, stays torchvision's, as its recipe trained it."""
    from alexnet_spec import exchange
    from parity.files import preprocessing_for

    model = tmp_path / "tiny.caffemodel"
    model.write_bytes(_valid_prefix())
    assert preprocessing_for(model) == "caffe"
    state = {"features.0.bias": np.zeros(96, np.float32)}
    ours, ported = tmp_path / "ours.safetensors", tmp_path / "ported.safetensors"
    exchange.save(ours, exchange.Exchange(state, "paper", {"lrn": "caffe"}))  # what save_weights writes for paper
    exchange.save(ported, exchange.Exchange(state, "paper", {"lrn": "caffe"}, preprocessing="caffe"))
    assert preprocessing_for(ours) == "torchvision" and preprocessing_for(ours, "caffe") == "caffe"
    assert preprocessing_for(ported) == "caffe" and preprocessing_for(ported, "torchvision") == "torchvision"
    assert exchange.load(ported).preprocessing == "caffe" and exchange.load(ours).preprocessing == ""


@pytest.mark.slow
def test_check_passes_on_the_pt_and_keras_pair_ported_from_one_caffemodel(tmp_path, weights, capsys):
    """Issue 21's "done when": `alexnet-parity check --torch paper.pt --keras paper.keras` exits 0 on
    the two files `port` writes from the same .caffemodel."""
    from alexnet_cli.parity import main

    from parity.files import preprocessing_for

    model, _ = write_model(tmp_path, weights, v1=True)
    pt, keras_file = tmp_path / "paper.pt", tmp_path / "paper.keras"
    assert main(["port", str(model), str(pt)]) == 0
    assert main(["port", str(model), str(keras_file)]) == 0
    capsys.readouterr()
    assert main(["check", "--torch", str(pt), "--keras", str(keras_file)]) == 0, capsys.readouterr()
    # The .safetensors port records Caffe's input, and a port of that port keeps it.
    first, second = tmp_path / "paper.safetensors", tmp_path / "again.safetensors"
    assert main(["port", str(model), str(first)]) == 0 and main(["port", str(first), str(second)]) == 0
    assert preprocessing_for(first) == preprocessing_for(second) == "caffe"
