"""alexnet-predict resizes before it crops, so a photograph smaller than the network's input is
classified; only what the resize cannot work with is refused. A weight file no sidecar vouches
for is used with a warning."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import alexnet_torch
from alexnet_cli import predict


def _run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = predict.main(argv)
    return code, out.getvalue(), err.getvalue()


def _photo(path, size):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_a_40x40_photo_is_resized_and_classified_by_both_frameworks(tmp_path):
    photo = _photo(tmp_path / "small.png", (40, 40))
    code, out, err = _run([photo, "--weights", "random", "--json"])
    assert code == 0, err
    result = json.loads(out)["results"][photo]
    assert len(result["top"]["torch"]) == len(result["top"]["keras"]) == 5 and result["agree"]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_image_the_resize_cannot_take_is_refused(tmp_path, framework):
    strip = _photo(tmp_path / "strip.png", (2000, 1))
    code, _, err = _run([strip, "--framework", framework, "--weights", "random"])
    assert code == 2
    assert f"{strip} is 2000x1 pixels: resizing its shorter side to 256 would make it 512000x256" in err
    blank = Image.new("RGB", (0, 7))
    with pytest.raises(ValueError, match="the image is 0x7 pixels: it holds no pixels to resize"):
        (alexnet_torch.load_image if framework == "torch" else __import__("alexnet_keras").load_image)(blank)


def test_predict_warns_when_no_sidecar_verified_the_weights(tmp_path, paper_torch):
    photo = _photo(tmp_path / "photo.png", (40, 40))
    verified = alexnet_torch.save_weights(paper_torch, tmp_path / "signed" / "paper.safetensors", sidecar=True)
    argv = [photo, "--framework", "torch", "--variant", "paper", "--weights"]
    code, _, err = _run([*argv, str(verified)])
    assert code == 0 and "warning" not in err, err
    bare = shutil.copy(verified, tmp_path / "paper.safetensors")
    code, _, err = _run([*argv, str(bare)])
    assert code == 0
    (line,) = err.splitlines()
    assert line.startswith(f"alexnet-predict: warning: nothing verified {bare}: it has no paper.safetensors.sha256")
