"""Weight files and the alexnet-parity CLI: formats, exit codes, hostile and broken files."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import alexnet_keras
import alexnet_torch
import parity
from alexnet_spec import exchange
from parity import files
from alexnet_cli.parity import main
from tests.reference import subprocess_env


@pytest.fixture(scope="module")
def saved(tmp_path_factory, paper_torch, paper_keras):
    """The same randomized paper weights in every format."""
    d = tmp_path_factory.mktemp("weights")
    alexnet_torch.save_weights(paper_torch, d / "m.pt")
    alexnet_torch.save_weights(paper_torch, d / "m.safetensors")
    alexnet_keras.save_weights(paper_keras, d / "m.keras")
    alexnet_keras.save_weights(paper_keras, d / "m.weights.h5")
    return d


class Evil:
    def __reduce__(self):
        return (os.mkdir, (os.environ["EVIL_SENTINEL"],))


def _hostile(path, sentinel):
    os.environ["EVIL_SENTINEL"] = str(sentinel)
    path.write_bytes(pickle.dumps({"features.0.weight": Evil()}))


def _truncate(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_safetensors_is_readable_with_numpy_alone(saved, paper_torch):
    from safetensors.numpy import load_file

    arrays = load_file(str(saved / "m.safetensors"))
    np.testing.assert_array_equal(arrays["features.0.weight"], paper_torch.features[0].weight.detach().numpy())
    record = exchange.load(saved / "m.safetensors")
    assert record.variant == "paper" and record.options == {"lrn": "caffe"}


@pytest.mark.parametrize("name", ["m.pt", "m.safetensors", "m.keras", "m.weights.h5"])
def test_every_format_reads_back_the_same_weights(saved, paper_torch, name):
    record = files.read(saved / name)
    assert record.variant == "paper"
    for key, value in paper_torch.state_dict().items():
        np.testing.assert_array_equal(record.state[key], value.numpy(), err_msg=key)


@pytest.mark.parametrize("src, dst", [("m.pt", "a.keras"), ("m.keras", "a.pt"), ("m.weights.h5", "a.safetensors"),
                                      ("m.safetensors", "a.weights.h5")])
def test_port_between_formats(saved, tmp_path, src, dst, capsys, paper_torch):
    assert main(["port", str(saved / src), str(tmp_path / dst)]) == 0
    assert "wrote" in capsys.readouterr().out
    record = files.read(tmp_path / dst)
    np.testing.assert_array_equal(record.state["classifier.0.weight"], paper_torch.classifier[0].weight.detach().numpy())
    # the file and its sha256 sidecar; no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [dst, f"{dst}.sha256"]


def test_port_refuses_to_overwrite_without_force(saved, tmp_path, capsys):
    target = tmp_path / "out.pt"
    target.write_bytes(b"precious")
    assert main(["port", str(saved / "m.safetensors"), str(target)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_bytes() == b"precious"
    assert main(["port", str(saved / "m.safetensors"), str(target), "--force"]) == 0
    assert files.read(target).variant == "paper"


def test_check_files_agree(saved, capsys):
    assert main(["check", "--torch", str(saved / "m.pt"), "--keras", str(saved / "m.keras")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["check", "--torch", str(saved / "m.safetensors"), "--keras", str(saved / "m.weights.h5"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["reports"][0]["rows"][-1]["layer"] == "predictions"


def test_check_files_that_differ_names_the_first_layer(saved, tmp_path, capsys, paper_torch):
    other = parity.randomize_torch(alexnet_torch.build("paper"), seed=0)
    with torch.no_grad():
        other.features[10].bias.add_(0.5)  # conv4
    alexnet_torch.save_weights(other, tmp_path / "other.pt")
    assert main(["check", "--torch", str(tmp_path / "other.pt"), "--keras", str(saved / "m.keras")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "first diverging layer conv4" in out


def test_a_hostile_pickle_is_refused_and_never_runs(tmp_path, saved, capsys):
    sentinel = tmp_path / "pwned"
    _hostile(tmp_path / "evil.pt", sentinel)
    assert main(["check", "--torch", str(tmp_path / "evil.pt"), "--keras", str(saved / "m.keras")]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["port", str(tmp_path / "evil.pt"), str(tmp_path / "x.safetensors")]) == 2
    assert not sentinel.exists() and not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("name", ["m.pt", "m.safetensors", "m.keras", "m.weights.h5"])
def test_truncated_files_exit_2_with_a_message(saved, tmp_path, name, capsys):
    broken = _truncate(saved / name, tmp_path / name)
    assert main(["port", str(broken), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "alexnet-parity: error:" in err and str(broken) in err
    assert not (tmp_path / "out.safetensors").exists()


def test_mismatched_weights_are_named(tmp_path, capsys):
    state = alexnet_torch.build("paper").state_dict()
    state["classifier.3.weight"] = torch.zeros(10, 4096)
    del state["features.12.bias"]
    torch.save(state, tmp_path / "bad.pt")
    assert main(["port", str(tmp_path / "bad.pt"), str(tmp_path / "out.keras")]) == 2
    err = capsys.readouterr().err
    assert "features.12.bias" in err and "classifier.3.weight" in err and "(4096, 4096)" in err


def test_unknown_weights_cannot_be_guessed(tmp_path, capsys):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pt")
    assert main(["port", str(tmp_path / "resnet.pt"), str(tmp_path / "out.keras")]) == 2
    assert "cannot tell which AlexNet variant" in capsys.readouterr().err


def test_port_error_reports_every_problem():
    from alexnet_spec.port import torch_to_keras
    from alexnet_spec.tables import get_table

    state = {k: v.numpy() for k, v in alexnet_torch.build("paper", num_classes=5).state_dict().items()}
    state["extra.weight"] = np.zeros(1)
    state.pop("features.0.bias")
    with pytest.raises(parity.PortError) as err:
        torch_to_keras(get_table("paper"), state)
    assert err.value.report.missing == ["features.0.bias"] and err.value.report.unexpected == ["extra.weight"]


def test_check_variant_cli_in_a_subprocess():
    """The console entry point as CI runs it: table, verdict and exit code."""
    out = subprocess.run([sys.executable, "-m", "parity", "check", "--variant", "paper", "--batch", "1"],
                         capture_output=True, text=True, env=subprocess_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PASS: paper" in out.stdout and "bit-identical" in out.stdout


def test_check_with_a_too_strict_tolerance_exits_1(capsys):
    assert main(["check", "--variant", "paper", "--batch", "1", "--rtol", "1e-12"]) == 1
    assert "FAIL: paper" in capsys.readouterr().out


def test_the_cli_reads_every_suffix_alexnet_torch_reads():
    from alexnet_torch.weights import PT_SUFFIXES

    assert files.TORCH_FORMATS == PT_SUFFIXES


def test_files_written_with_the_old_lrn_name_still_load(tmp_path, paper_torch):
    """'document' was the earlier name of the 'caffe' LRN flavour: files that carry it load into
    both frameworks, as 'caffe'."""
    import alexnet_keras
    import alexnet_torch

    state = {k: v.numpy() for k, v in paper_torch.state_dict().items()}
    path = exchange.save(tmp_path / "old.safetensors", exchange.Exchange(state, "paper", {"lrn": "document"}))
    record = files.read(path)
    assert record.options == {"lrn": "document"}
    module = files.torch_model(record)
    assert module.options == {"lrn": "caffe"}
    for a, b in zip(module.state_dict().values(), paper_torch.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())
    keras_model = alexnet_keras.build("paper", **record.options)
    alexnet_keras.load_weights(keras_model, path)
    assert keras_model.options == {"lrn": "caffe"}
    assert alexnet_torch.build("paper", lrn="document").options == {"lrn": "caffe"}
    with pytest.raises(ValueError, match="lrn must be one of"):
        alexnet_torch.build("paper", lrn="tf")
