"""The torchvision variant in PyTorch: torchvision's own class and weights enum, our checks and facts."""

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models import AlexNet_Weights

import alexnet_torch
from alexnet_spec import get_spec, imagenet
from alexnet_spec.tables import get_table
from tests.reference import assert_same_network

ENUM = AlexNet_Weights.IMAGENET1K_V1


def test_our_facts_agree_with_torchvisions_enum():
    """alexnet_spec.imagenet repeats the enum for Keras-only installs; this keeps the two equal."""
    w = imagenet.IMAGENET1K_V1
    assert w.url == ENUM.url and w.url.endswith("/" + w.file_name)
    assert w.file_name.split("-")[-1] == f"{w.sha256_prefix}.pth"
    assert w.num_params == ENUM.meta["num_params"]
    metrics = ENUM.meta["_metrics"]["ImageNet-1K"]
    assert (w.acc1, w.acc5) == (metrics["acc@1"], metrics["acc@5"])
    assert w.gflops == ENUM.meta["_ops"]
    assert ENUM.meta["min_size"] == (get_spec("torchvision").min_input_size,) * 2
    t = ENUM.transforms()
    assert (t.resize_size, t.crop_size) == ([w.resize_size], [w.crop_size])
    assert (tuple(t.mean), tuple(t.std)) == (w.mean, w.std)
    assert t.antialias is True and t.interpolation.value == "bilinear"
    assert imagenet.class_names() == tuple(ENUM.meta["categories"])


def test_it_is_torchvisions_network():
    ours, theirs = alexnet_torch.build("torchvision"), torchvision.models.alexnet()
    assert isinstance(ours, torchvision.models.AlexNet)
    assert sum(p.numel() for p in ours.parameters()) == 61_100_840
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert set(get_table("torchvision").torch_keys()) == set(theirs.state_dict())


def test_a_torchvision_checkpoint_loads_as_it_is(tmp_path):
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet().eval()
    torch.save(theirs.state_dict(), tmp_path / "alexnet-owt-test.pth")
    ours = alexnet_torch.build("torchvision", weights=tmp_path / "alexnet-owt-test.pth").eval()
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in theirs.state_dict().items())
    assert_same_network(theirs, ours, torch.randn(2, 3, 224, 224))


def test_imagenet1k_v1_goes_through_torchvisions_cache(tmp_path, monkeypatch):
    """The download path is torchvision's: a checkpoint already in torch's cache is used, no network."""
    torch.manual_seed(1)
    state = torchvision.models.alexnet().state_dict()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / imagenet.IMAGENET1K_V1.file_name)
    for weights in ("IMAGENET1K_V1", "DEFAULT", ENUM):
        model = alexnet_torch.build("torchvision", weights=weights, progress=False)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="has 1000 classes; found num_classes=10"):
        alexnet_torch.build("torchvision", weights="IMAGENET1K_V1", num_classes=10)
    with pytest.raises(ValueError, match="unknown torchvision weights 'IMAGENET1K_V9'"):
        alexnet_torch.build("torchvision", weights="IMAGENET1K_V9")


@pytest.mark.parametrize("size", [(63, 63), (257, 301)])
def test_any_size_from_63(size):
    model = alexnet_torch.build("torchvision").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, *size)).shape == (1, 1000)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 3, 62, 100), ["at least 63x63", "found 62x100"]),
        ((1, 224, 224, 3), ["NHWC", "permute(0, 3, 1, 2)"]),
        ((3, 224, 224), ["unsqueeze(0)"]),
    ],
)
def test_bad_inputs_say_what_to_do(shape, words):
    with pytest.raises(ValueError) as err:
        alexnet_torch.build("torchvision")(torch.zeros(shape))
    for word in words:
        assert word in str(err.value)


def test_decode_predictions():
    logits = torch.zeros(2, 1000)
    logits[0, 281], logits[0, 285], logits[1, 0] = 3.0, 2.0, 1.0
    top = alexnet_torch.decode_predictions(logits, top=2)
    assert top[0] == [(281, "tabby", 3.0), (285, "Egyptian cat", 2.0)]
    assert top[1][0] == (0, "tench", 1.0)
    with pytest.raises(ValueError, match=r"shape \(N, 1000\)"):
        alexnet_torch.decode_predictions(np.zeros(1000))


def test_importable_after_keras():
    """torchvision (via torch._dynamo -> triton) segfaults when imported after TensorFlow unless
    triton is hidden; ``import parity``, where both frameworks meet, does that in any order."""
    import subprocess
    import sys

    from tests.reference import subprocess_env

    code = (
        "import alexnet_keras, parity, alexnet_torch, torch\n"
        "print(alexnet_torch.build('torchvision')(torch.zeros(1, 3, 63, 63)).shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert out.returncode == 0 and "torch.Size([1, 1000])" in out.stdout, out.stderr[-2000:]


def test_variant_modules_do_not_shadow_torchvision():
    """alexnet_torch/torchvision.py and alexnet_keras/torchvision.py are named after the variant;
    the torchvision they import is the package, not themselves."""
    import torchvision

    import alexnet_torch.torchvision as ours

    assert ours.__name__ == "alexnet_torch.torchvision" and ours.AlexNet is torchvision.models.AlexNet
    assert torchvision.__name__ == "torchvision" and hasattr(torchvision, "models")
