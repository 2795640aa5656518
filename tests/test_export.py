"""PyTorch's own tools take every literal model as it is: torch.jit.script, torch.jit.trace,
torch.fx.symbolic_trace, torch.export and both ONNX exporters, the ONNX files checked in
onnxruntime against a float64 run (parity.onnx_export)."""

import json

import pytest
import torch

import alexnet_torch
from alexnet_spec import get_spec
from parity import onnx_export
from tests.reference import rel_error

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module", params=alexnet_torch.VARIANTS)
def model_and_batch(request):
    model = onnx_export.example_model(request.param, seed=0)
    x = torch.from_numpy(onnx_export.example_batch(model, batch=2, seed=1))
    with torch.no_grad():
        y = model(x)
    return model, x, y


@pytest.mark.parametrize("tool", ["jit.script", "jit.trace", "fx.symbolic_trace", "export.export"])
def test_pytorchs_tools_take_the_model_as_it_is(model_and_batch, tool):
    model, x, y = model_and_batch
    graph = {
        "jit.script": lambda: torch.jit.script(model),
        "jit.trace": lambda: torch.jit.trace(model, x),
        "fx.symbolic_trace": lambda: torch.fx.symbolic_trace(model),
        "export.export": lambda: torch.export.export(model, (x,)).module(),
    }[tool]()
    with torch.no_grad():
        assert rel_error(y, graph(x)) <= 1e-6


def test_the_input_check_survives_fx_and_is_left_out_of_script(model_and_batch):
    model, x, _ = model_and_batch
    spec = get_spec(model.variant)
    nhwc = x.permute(0, 2, 3, 1).contiguous()
    for graph in (model, torch.fx.symbolic_trace(model)):
        with pytest.raises(ValueError, match="NHWC"):
            graph(nhwc)
        with pytest.raises(ValueError, match="3 input channels"):
            graph(x[:, :1])
    code = torch.fx.symbolic_trace(model).code
    assert "check_variant_input" in code  # one recorded call, run on every input
    scripted = torch.jit.script(model)
    assert "check_variant_input" not in scripted.code
    if spec.min_input_size is None:
        with pytest.raises(Exception):  # TorchScript runs without our message, and still refuses the size
            scripted(torch.zeros(1, 3, 2 * spec.input_size, 2 * spec.input_size))


@pytest.mark.slow
@pytest.mark.parametrize("exporter", onnx_export.EXPORTERS)
def test_onnx_export_runs_in_onnxruntime_at_fp32s_floor(model_and_batch, exporter, tmp_path):
    model, x, _ = model_and_batch
    row = onnx_export.export_and_verify(model, tmp_path / "m.onnx", x.numpy(), exporter=exporter)
    report = onnx_export.ExportReport([row], onnx_export.DEFAULT_RTOL)
    print(report)
    assert row.ok, report.verdict()
    # within 2e-6 of float64, or (where PyTorch's own fp32 run of these weights is further) no further than it
    assert row.onnx_vs_f64 <= max(2e-6, row.torch_vs_f64)
    assert row.batch1_vs_f64 <= max(2e-6, row.torch_vs_f64)
    assert row.onnx_vs_torch <= 1e-5


@pytest.mark.slow
def test_verify_catches_a_wrong_file(tmp_path):
    """The check can fail: a file exported from other weights is caught."""
    a = onnx_export.example_model("torchvision", seed=0)
    b = onnx_export.example_model("torchvision", seed=5)
    x = onnx_export.example_batch(a, batch=2, seed=1)
    onnx_export.export(b, tmp_path / "b.onnx", x, exporter="torchscript")
    row = onnx_export.verify(a, tmp_path / "b.onnx", x, exporter="torchscript")
    assert not row.ok and row.onnx_vs_f64 > 1e-2
    assert "FAIL" in onnx_export.ExportReport([row], onnx_export.DEFAULT_RTOL).verdict()


@pytest.mark.slow
def test_cli_export(tmp_path, capsys):
    from parity.cli import main
    from parity.console import EXIT_ERROR, EXIT_OK

    target = tmp_path / "paper.onnx"
    assert main(["export", "paper", str(target), "--exporter", "torchscript", "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["rows"][0]["variant"] == "paper" and target.is_file()
    assert main(["export", "paper", str(target)]) == EXIT_ERROR  # exists: no overwrite without --force
    assert "--force" in capsys.readouterr().err
    checkpoint = tmp_path / "cifar.pt"
    alexnet_torch.save_weights(onnx_export.example_model("cifar", seed=3), checkpoint)
    assert main(["export", str(checkpoint), str(tmp_path / "cifar.onnx"), "--exporter", "torchscript"]) == EXIT_OK
    assert "PASS" in capsys.readouterr().out
    assert main(["export", "resnet", str(tmp_path / "r.onnx")]) == EXIT_ERROR
