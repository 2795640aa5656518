import numpy as np
import pytest
import torch

import alexnet_torch
from alexnet_spec import LRN_FLAVOURS, get_spec
from alexnet_spec.variants import PAPER_INIT_ONE_BIAS, PAPER_INIT_STD
from tests.reference import DocumentAlexNet, assert_same_network


def test_parameter_count_and_keys_match_the_document():
    ours, doc = alexnet_torch.build("paper"), DocumentAlexNet()
    assert sum(p.numel() for p in ours.parameters()) == 60_965_224
    assert list(ours.state_dict()) == list(doc.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [tuple(v.shape) for v in doc.state_dict().values()]


def test_a_document_checkpoint_loads_strictly_and_computes_the_same(tmp_path):
    torch.manual_seed(3)
    doc = DocumentAlexNet().eval()
    torch.save(doc.state_dict(), tmp_path / "doc.pt")
    ours = alexnet_torch.build("paper", weights=tmp_path / "doc.pt").eval()
    ours.load_state_dict(doc.state_dict(), strict=True)
    assert_same_network(doc, ours, torch.randn(2, 3, 227, 227))


def test_channels_last_input_works():
    model = alexnet_torch.build("paper").eval()
    x = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        a = model(x)
        b = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 3, 224, 224), ["227x227", "224x224", "'torchvision'"]),
        ((1, 227, 227, 3), ["NHWC", "permute(0, 3, 1, 2)"]),
        ((1, 1, 227, 227), ["3 input channels", "found 1"]),
        ((3, 227, 227), ["NCHW batch", "3-D", "unsqueeze(0)"]),
    ],
)
def test_bad_inputs_say_what_to_do(shape, words):
    model = alexnet_torch.build("paper")
    with pytest.raises(ValueError) as err:
        model(torch.zeros(shape))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("flavour", sorted(LRN_FLAVOURS))
def test_lrn_flavours(flavour):
    model = alexnet_torch.build("paper", lrn=flavour)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LocalResponseNorm)]
    p = LRN_FLAVOURS[flavour]
    assert len(norms) == 2 and all((n.size, n.alpha, n.beta, n.k) == (p.size, p.alpha, p.beta, p.k) for n in norms)


def test_paper_lrn_is_the_papers_formula():
    """k=2 and alpha=1e-4 applied to the plain sum of squares, as in section 3.3."""
    a = torch.rand(1, 7, 2, 2) * 30
    out = alexnet_torch.build("paper", lrn="paper").features[2](a.clone())
    sq = torch.nn.functional.pad(a.square(), (0, 0, 0, 0, 2, 2))
    window = sum(sq[:, i : i + 7] for i in range(5))
    torch.testing.assert_close(out, a / (2 + 1e-4 * window) ** 0.75)


def test_paper_initialization():
    torch.manual_seed(0)
    model = alexnet_torch.build("paper", init="paper")
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    biases = [float(m.bias.detach().mean()) for m in convs]
    names = get_spec("paper").weighted_layers  # conv1..5, fc1, fc2, predictions
    assert biases == [1.0 if n in PAPER_INIT_ONE_BIAS else 0.0 for n in names] == [0, 1, 0, 1, 1, 1, 1, 0]
    weight = convs[5].weight.detach()
    assert abs(float(weight.std()) - PAPER_INIT_STD) < 1e-4 and abs(float(weight.mean())) < 1e-4


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="unknown AlexNet variant 'resnet'"):
        alexnet_torch.build("resnet")
    with pytest.raises(ValueError, match="lrn must be one of"):
        alexnet_torch.build("paper", lrn="tf")


def test_num_classes():
    model = alexnet_torch.build("paper", num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 227, 227)).shape == (1, 7)
    assert np.prod(model.classifier[6].weight.shape) == 7 * 4096
