"""--device in alexnet-train, -eval and -predict (issue 20, item 1): the device chosen and named
(alexnet-train: the first line of stderr and run.json; -eval and -predict: the first line of their
result), a GPU that is not there refused in one line with nothing written,
Keras's GPUs hidden through CUDA_VISIBLE_DEVICES, a run resumed on another device said so.

The machine may or may not have CUDA: the tests that need "no GPU" say so by patching what torch
and Keras report, so they prove the same thing on either."""

import json
import os
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (first: see parity._triton)

from alexnet_cli import devices, evaluate, predict, train
from alexnet_cli.console import EXIT_ERROR, EXIT_OK
from alexnet_training import runs

SMALL = ["--variant", "cifar", "--data", "digits", "--limit", "48", "--batch-size", "16", "--epochs", "1",
         "--precise-bn", "0", "--no-progress"]


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without a GPU, for both frameworks."""
    import alexnet_keras.devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(alexnet_keras.devices, "gpus", lambda: [])


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_torch_resolves_auto_cpu_and_refuses_a_cuda_device_it_lacks(monkeypatch):
    from alexnet_torch.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")
    with pytest.raises(ValueError, match=r"--device cuda: this machine's torch sees no CUDA device "
                                         r"\(torch.cuda.is_available\(\) is False\); use --device cpu or auto"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0) == resolve_device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"--device cuda:2: torch sees 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_keras_takes_the_backends_gpu_and_refuses_one_it_lacks(monkeypatch):
    import alexnet_keras.devices as kd

    monkeypatch.setattr(kd, "gpus", lambda: ["gpu:0"])
    assert kd.resolve_device("auto") == kd.resolve_device("cuda") == "gpu:0"
    with pytest.raises(ValueError, match="--device cpu: .* started with its GPUs"):
        kd.resolve_device("cpu")  # too late to hide them: said, not ignored
    monkeypatch.setattr(kd, "gpus", lambda: [])
    assert kd.resolve_device("auto") == kd.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match=r"--device cuda:0: .* sees no GPU; use --device cpu or auto"):
        kd.resolve_device("cuda:0")


def test_keras_gpus_are_hidden_or_narrowed_before_the_backend_starts(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras")  # as in a fresh alexnet-train process
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert devices.hide_gpus("cuda:1") == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert devices.hide_gpus("cpu") == "cpu" and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert devices.hide_gpus("auto") == "auto" and os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_train_on_a_missing_gpu_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, no_gpu, framework,
                                                                         device):
    out = tmp_path / "run"
    assert train.main(["--framework", framework, *SMALL, "--device", device, "--out", str(out)]) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert f"--device {device}:" in line and "no" in line and "use --device cpu or auto" in line, line
    assert not out.exists()


def test_an_unknown_device_is_refused_by_the_parser(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--framework", "torch", *SMALL, "--device", "tpu", "--out", str(out)]) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert "--device" in line and "'tpu'" in line and "cuda:N" in line
    assert not out.exists()


def test_the_device_is_the_first_line_and_in_run_json_and_resuming_elsewhere_is_said(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--framework", "torch", *SMALL, "--device", "cpu", "--out", str(out)]) == EXIT_OK
    first = capsys.readouterr().err.splitlines()[0]
    assert first == f"device: cpu (torch {torch.__version__})"
    assert runs.read_config(out).device == "cpu"

    # a run started on a GPU (as run.json would say) goes on here: allowed, and said
    config = runs.read_config(out)
    config.device = "cuda:0"
    (out / runs.RUN_FILE).write_text(config.to_json())
    argv = ["--framework", "torch", *SMALL, "--epochs", "2", "--device", "cpu", "--out", str(out), "--resume"]
    assert train.main(argv) == EXIT_OK
    err = capsys.readouterr().err
    assert f"resuming {out} on cpu; its earlier epochs ran on cuda:0" in err, err
    assert [r["epoch"] for r in runs.read_metrics(out)] == [1, 2]


def test_with_json_the_device_is_in_the_object_not_on_stderr(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--framework", "torch", *SMALL, "--out", str(out), "--json"]) == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["config"]["device"] in ("cpu", "cuda:0")
    assert "device:" not in captured.err


def test_a_run_json_without_device_or_precision_reads_and_resumes_as_fp32(tmp_path):
    """run.json files written before the two fields existed."""
    config = runs.RunConfig(framework="torch", variant="cifar", recipe="cifar", data="digits", epochs=2,
                            batch_size=16, seed=0, num_classes=10, options={}, lr=0.01)
    text = json.loads(config.to_json())
    del text["device"], text["precision"]
    (tmp_path / runs.RUN_FILE).write_text(json.dumps(text))
    stored = runs.read_config(tmp_path)
    assert (stored.device, stored.precision) == ("", "fp32")


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_eval_takes_the_device_flag(tmp_path, capsys, no_gpu, framework):
    weights = tmp_path / "cifar.safetensors"
    if framework == "torch":
        import alexnet_torch

        alexnet_torch.save_weights(alexnet_torch.build("cifar", 10, logits=True), weights)
        line = f"device: cpu (torch {torch.__version__})"
    else:
        import keras

        import alexnet_keras

        alexnet_keras.save_weights(alexnet_keras.build("cifar", 10, logits=True), weights)
        line = f"device: cpu (keras {keras.__version__}, {keras.config.backend()} "
    argv = ["--framework", framework, "--weights", str(weights), "--data", "digits", "--limit", "20"]
    assert evaluate.main([*argv, "--device", "cuda"]) == EXIT_ERROR
    assert "--device cuda:" in _one_line(capsys.readouterr().err)
    assert evaluate.main([*argv, "--device", "cpu"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[0].startswith(line)  # with the result: an error stays one line
    assert evaluate.main([*argv, "--device", "cpu", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"


def test_predict_takes_the_device_flag(tmp_path, capsys, no_gpu):
    from PIL import Image

    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 250, 3), dtype=np.uint8)).save(image)
    argv = [str(image), "--framework", "torch", "--weights", "random"]
    assert predict.main([*argv, "--device", "cuda"]) == EXIT_ERROR
    assert "--device cuda:" in _one_line(capsys.readouterr().err)
    assert predict.main([*argv, "--device", "cpu", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["device"] == {"torch": "cpu"}
    assert predict.main([*argv, "--device", "cpu"]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"device: cpu (torch {torch.__version__})\n")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_on_cuda_puts_the_model_and_batches_there(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--framework", "torch", *SMALL, "--device", "cuda", "--out", str(out)]) == EXIT_OK
    assert capsys.readouterr().err.startswith(f"device: cuda:0 ({torch.cuda.get_device_name(0)}")
    assert runs.read_config(out).device == "cuda:0" and torch.backends.cudnn.benchmark
