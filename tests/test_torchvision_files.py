"""Converted torchvision weights as files: the port command, loading them in Keras with and
without torch installed, and the refusal of broken, altered or foreign files."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torchvision

import alexnet_keras
import alexnet_torch
from alexnet_spec import imagenet
from alexnet_cli import parity as cli
from parity import random_batch, randomize_torch
from tests.reference import KERAS_BACKEND, import_blocker, rel_error, subprocess_env, torch_float64


@pytest.fixture(scope="module")
def tv_torch():
    return randomize_torch(torchvision.models.alexnet(), seed=0).eval()


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tv_torch):
    """``alexnet-parity port --weights IMAGENET1K_V1`` run against a torch cache holding tv_torch's
    weights in place of torchvision's file (no network here): the real conversion path."""
    root = tmp_path_factory.mktemp("caches")
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(root / "torch"))
    (root / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(tv_torch.state_dict(), root / "torch" / "hub" / "checkpoints" / imagenet.IMAGENET1K_V1.file_name)
    target = root / "keras" / "models" / imagenet.IMAGENET1K_V1.converted_name
    assert cli.main(["port", "--variant", "torchvision", "--weights", "IMAGENET1K_V1", str(target)]) == 0
    assert cli.main(["port", str(target), str(root / "tv.weights.h5")]) == 0
    mp.undo()
    return root, target


@pytest.fixture(scope="module")
def blank_keras():
    """One model the file tests load into: a failed load must leave it untouched (all or nothing)."""
    return alexnet_keras.build("torchvision")


def test_converted_weights_load_in_keras(converted, tv_torch, blank_keras, monkeypatch):
    root, target = converted
    assert (target.parent / (target.name + ".sha256")).is_file()
    monkeypatch.setenv("KERAS_HOME", str(root / "keras"))
    x = random_batch((2, 3, 224, 224), seed=2)
    ref = torch_float64(tv_torch, x)
    for weights in (target, root / "tv.weights.h5"):
        alexnet_keras.load_weights(blank_keras, weights)
        assert rel_error(ref, blank_keras.predict(x.transpose(0, 2, 3, 1), verbose=0)) < 1e-5, weights
    base = alexnet_keras.AlexNet(include_top=False, weights="imagenet", input_shape=(100, 90, 3))
    assert np.array_equal(base.get_layer("conv5").kernel.numpy(), blank_keras.get_layer("conv5").kernel.numpy())


@pytest.mark.skipif(KERAS_BACKEND == "torch", reason="Keras's torch backend needs torch: without it, Keras runs another backend")
def test_keras_only_path_runs_without_torch(converted, tv_torch, tmp_path):
    """A fresh interpreter where `import torch` fails loads the converted files and predicts."""
    root, target = converted
    x = random_batch((1, 3, 224, 224), seed=3)
    np.save(tmp_path / "x.npy", x.transpose(0, 2, 3, 1))
    np.save(tmp_path / "ref.npy", torch_float64(tv_torch, x))
    code = import_blocker("torch", "torchvision") + textwrap.dedent(
        f"""
        import numpy as np, alexnet_keras
        x, ref = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'ref.npy')!r})
        model = alexnet_keras.AlexNet(weights="imagenet", classifier_activation=None)  # the .safetensors
        for weights in (None, {str(root / 'tv.weights.h5')!r}):
            if weights:
                alexnet_keras.load_weights(model, weights)
            out = np.asarray(model(x))
            err = np.abs(out - ref).max() / np.abs(ref).max()
            assert err < 1e-5, (weights, err)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        print("keras-only ok")
        """
    )
    env = subprocess_env(KERAS_HOME=str(root / "keras"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "keras-only ok" in out.stdout, out.stderr[-3000:]


def test_bad_weight_files_are_refused(converted, blank_keras, tmp_path, monkeypatch):
    from alexnet_keras.torchvision import load_imagenet_weights

    root, target = converted
    before = blank_keras.get_layer("fc1").kernel.numpy().copy()
    # truncated, no sidecar: the format reader says so
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(target.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        alexnet_keras.load_weights(blank_keras, broken)
    # changed after conversion: the checksum says so, in both frameworks
    altered = tmp_path / "altered.safetensors"
    blob = bytearray(target.read_bytes())
    blob[-10] ^= 0xFF
    altered.write_bytes(bytes(blob))
    (tmp_path / "altered.safetensors.sha256").write_text(
        (target.parent / (target.name + ".sha256")).read_text().replace(target.name, altered.name)
    )
    with pytest.raises(ValueError, match="does not match its checksum"):
        alexnet_keras.load_weights(blank_keras, altered)
    with pytest.raises(ValueError, match="does not match its checksum"):
        alexnet_torch.build("torchvision", weights=altered)
    # the cached file must carry its checksum
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    (tmp_path / "kh" / "models").mkdir(parents=True)
    (tmp_path / "kh" / "models" / target.name).write_bytes(target.read_bytes())
    with pytest.raises(ValueError, match="no checksum file"):
        load_imagenet_weights(blank_keras)
    # another variant's weights
    paper = tmp_path / "paper.safetensors"
    alexnet_torch.save_weights(alexnet_torch.build("paper"), paper)
    with pytest.raises(ValueError, match="'paper' variant"):
        alexnet_keras.load_weights(blank_keras, paper)
    # not HDF5 at all
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="could not be loaded"):
        alexnet_keras.load_weights(blank_keras, garbage)
    assert np.array_equal(blank_keras.get_layer("fc1").kernel.numpy(), before)


def test_port_without_network_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert cli.main(["port", "--variant", "torchvision", "--weights", "IMAGENET1K_V1", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "network is unreachable" in err and "alexnet-parity port alexnet-owt-7be5be79.pth TARGET" in err


def test_a_manual_download_is_hash_checked(tmp_path, capsys):
    fake = tmp_path / imagenet.IMAGENET1K_V1.file_name
    torch.save(torchvision.models.alexnet().state_dict(), fake)
    assert cli.main(["port", str(fake), str(tmp_path / "o.safetensors")]) == 2
    assert "named like torchvision's IMAGENET1K_V1 checkpoint but its sha256 is" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_demo_uses_pretrained_weights_only_when_converted(converted, tmp_path, monkeypatch):
    from alexnet_cli import demo

    root, target = converted
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    weights, note = demo.choose_weights()
    assert weights == "random" and "--weights IMAGENET1K_V1" in note
    monkeypatch.setenv("KERAS_HOME", str(root / "keras"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    assert demo.choose_weights()[0] == "imagenet"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-cache"))
    assert demo.choose_weights()[0] == str(target)
