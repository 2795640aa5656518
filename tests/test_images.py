"""Opening images for both pipelines: modes converted or refused, unreadable files, small images
resized, and the predict CLI's errors (no model is loaded when an image is bad)."""

import numpy as np
import pytest
from PIL import Image

import alexnet_keras
import alexnet_torch
from alexnet_training.images import ImageError, open_rgb
from alexnet_cli import predict
from alexnet_cli.console import EXIT_ERROR

RNG = np.random.default_rng(0)


def _save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def _rgb(size=(80, 70)):
    return Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "YCbCr"])
def test_modes_converted_to_rgb(tmp_path, mode):
    suffix = ".jpg" if mode in ("CMYK", "YCbCr") else ".png"
    path = _save(tmp_path, f"x{suffix}", _rgb().convert(mode))
    image = open_rgb(path)
    assert image.mode == "RGB" and image.size == (80, 70)
    if mode == "L":
        a = np.asarray(image)
        assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_opaque_alpha_dropped_transparent_refused(tmp_path):
    rgba = _rgb().convert("RGBA")
    assert open_rgb(_save(tmp_path, "opaque.png", rgba)).mode == "RGB"
    rgba.putpixel((3, 4), (1, 2, 3, 0))
    with pytest.raises(ImageError, match="has transparency.*1 pixels not opaque.*alpha_composite"):
        open_rgb(_save(tmp_path, "hole.png", rgba))
    palette = _rgb().convert("P")
    palette.info["transparency"] = 0
    with pytest.raises(ImageError, match="has transparency"):
        open_rgb(_save(tmp_path, "palette.png", palette))


def test_high_depth_refused(tmp_path):
    deep = Image.fromarray(RNG.integers(0, 65535, (70, 80), dtype=np.uint16))
    with pytest.raises(ImageError, match="16-bit, float"):
        open_rgb(_save(tmp_path, "deep.png", deep))
    with pytest.raises(ImageError, match="16-bit, float"):
        open_rgb(Image.fromarray(RNG.random((70, 80), dtype=np.float32)))


def test_unreadable_files(tmp_path):
    with pytest.raises(ImageError, match="no such image file"):
        open_rgb(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="cannot read .*notes.png as an image"):
        open_rgb(text)
    good = _save(tmp_path, "good.png", _rgb((300, 300)))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ImageError, match="truncated"):
        open_rgb(cut)


def test_both_pipelines_crop_the_same_pixels(tmp_path):
    """Odd sizes exercise torchvision's rounding of the resized size and the crop offset; images
    smaller than the network's input are resized up first, as torchvision's transforms do."""
    for size in ((301, 257), (257, 301), (999, 300), (256, 256), (40, 40), (62, 200)):
        image = _rgb(size)
        a = alexnet_torch.load_image(image).numpy().transpose(1, 2, 0)
        b = alexnet_keras.preprocess_input(alexnet_keras.load_image(image))
        assert np.max(np.abs(a - b)) <= 1e-6, size


def test_predict_cli_reports_every_bad_image(tmp_path, capsys, monkeypatch):
    def no_models(*args, **kwargs):
        raise AssertionError("models were loaded although an image is bad")

    monkeypatch.setattr(predict, "load_models", no_models)
    text = tmp_path / "notes.jpg"
    text.write_text("text")
    strip = _save(tmp_path, "strip.png", _rgb((1, 2000)))  # 256x512000 once resized
    argv = [str(text), str(strip), str(tmp_path / "missing.png"), "--weights", "random"]
    assert predict.main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "cannot read" in err and "resizing its shorter side to 256" in err and "no such image file" in err


def test_predict_cli_without_imagenet_weights_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    image = _save(tmp_path, "x.png", _rgb())
    assert predict.main([str(image), "--framework", "keras"]) == EXIT_ERROR
    assert "alexnet-parity port --variant torchvision --weights IMAGENET1K_V1" in capsys.readouterr().err
    assert predict.main([str(image), "--variant", "paper", "--framework", "keras"]) == EXIT_ERROR
    assert "no published ImageNet weights for the 'paper' variant" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["La", "RGBa"])
def test_premultiplied_alpha_modes_are_judged_by_their_alpha(mode):
    """La / RGBa name their alpha band "a": opaque ones convert, transparent ones are refused."""
    opaque = _rgb().convert("RGBA").convert(mode)
    assert open_rgb(opaque).mode == "RGB"
    transparent = _rgb().convert("RGBA")
    transparent.putalpha(100)
    with pytest.raises(ImageError, match="transparency"):
        open_rgb(transparent.convert("LA" if mode == "La" else "RGBA").convert(mode))


def test_cifar_images_are_resized_to_the_network_not_cropped_from_256():
    """A 32x32 network sees the whole (center-cropped) picture, resized with ImageNet's 256/224 ratio."""
    from alexnet_spec.imagenet import resize_size_for
    from alexnet_training.images import center_crop, resize_shorter

    image = _rgb((120, 90))
    assert resize_size_for(224) == 256 and resize_size_for(32) == 37
    expected = np.asarray(center_crop(resize_shorter(image, 37), 32), dtype=np.float32)
    np.testing.assert_array_equal(alexnet_keras.load_image(image, "cifar"), expected)
    torch_x = alexnet_torch.load_image(image, "cifar").numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(torch_x, alexnet_keras.preprocess_input(expected), atol=1e-6)
