"""hubconf.py: every variant through torch.hub.load(<this checkout>, ..., source="local")."""

import pytest
import torch

import alexnet_torch
from alexnet_spec import imagenet
from tests.reference import ROOT


def test_every_variant_has_an_entry_point():
    for variant in alexnet_torch.VARIANTS:
        model = torch.hub.load(str(ROOT), f"alexnet_{variant}", source="local", num_classes=7)
        assert model.variant == variant
        assert model.state_dict()[[k for k in model.state_dict() if k.endswith("bias")][-1]].shape == (7,)


def test_pretrained_is_the_legacy_spelling_of_imagenet_weights(tmp_path, monkeypatch):
    import torchvision

    state = torchvision.models.alexnet().state_dict()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / imagenet.IMAGENET1K_V1.file_name)
    model = torch.hub.load(str(ROOT), "alexnet_torchvision", source="local", pretrained=True, progress=False)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="no published weights"):
        torch.hub.load(str(ROOT), "alexnet_paper", source="local", pretrained=True)
