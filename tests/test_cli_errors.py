"""What a new user and a hostile one hit on the command line: exit 2 and one line for anything
that is not "agree" or "differ", JSON alone on stdout with --json, tracebacks only with --debug,
and TensorFlow's native start-up banners kept off the terminal."""

import json
import os
import subprocess
import sys
import urllib.error

import numpy as np
import pytest

import alexnet_torch
import parity
from parity import check as check_lib
from alexnet_cli import predict
from alexnet_cli.parity import main
from alexnet_cli.console import EXIT_ERROR
from tests.reference import ROOT, subprocess_env

# Stand-ins, in the format tensorflow-cpu 2.21 writes to file descriptor 2 at import on CPUs with
# AVX-512 VNNI (absl's notice, then absl-formatted records); the tests never read TensorFlow's own.
BANNER = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1764300000.123456   40213 port.cc:153] stand-in banner: custom operations are on.\n"
)
BANNER_LINES = set(BANNER.decode().splitlines())


def _one_error_line(text, prog="alexnet-parity"):
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and lines[0].startswith(f"{prog}: error: "), text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture(scope="module")
def cifar_pt(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "cifar.pt"
    alexnet_torch.save_weights(parity.randomize_torch(alexnet_torch.build("cifar"), seed=1), path)
    return path


def test_an_empty_checkpoint_is_a_clear_error_not_a_crash(tmp_path, capsys):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert main(["port", str(empty), str(tmp_path / "out.safetensors")]) == EXIT_ERROR
    line = _one_error_line(capsys.readouterr().err)
    assert str(empty) in line and "not a readable PyTorch checkpoint" in line
    assert main(["port", str(empty), str(tmp_path / "out.safetensors"), "--json"]) == EXIT_ERROR
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and str(empty) in out["error"]


def test_a_directory_is_named_as_a_directory(tmp_path, capsys):
    folder = tmp_path / "weights.pt"
    folder.mkdir()
    assert main(["port", str(folder), str(tmp_path / "out.safetensors")]) == EXIT_ERROR
    assert "is a directory" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("batch, expected", [("0", "positive integer"), ("-3", "positive integer"),
                                             ("two", "positive integer"), ("100000", "GiB available")])
def test_impossible_batch_sizes_exit_2_before_any_work(batch, expected, capsys):
    assert main(["check", "--variant", "paper", "--batch", batch]) == EXIT_ERROR
    assert expected in _one_error_line(capsys.readouterr().err)


def test_usage_errors_honour_json(capsys):
    assert main(["check", "--json"]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert "--variant" in json.loads(captured.out)["error"]


def test_json_stdout_holds_the_json_alone(tmp_path, capfd, monkeypatch, cifar_pt):
    """What a library prints while the command works (torchvision's "Downloading: ..." line, a
    native library writing to file descriptor 1) goes to stderr."""
    from parity import files

    def noisy_download(name, variant):
        print('Downloading: "https://download.pytorch.org/models/x.pth" to /root/.cache/x.pth')
        os.write(1, b"native noise on fd 1\n")
        return files.read(cifar_pt)

    monkeypatch.setattr(check_lib, "published_weights", noisy_download)
    target = tmp_path / "out.safetensors"
    assert main(["port", "--weights", "IMAGENET1K_V1", str(target), "--json"]) == 0
    captured = capfd.readouterr()
    assert json.loads(captured.out)["target"] == str(target)
    assert "Downloading" in captured.err and "native noise" in captured.err


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch, cifar_pt):
    from parity import files

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(files, "write", broken)
    argv = ["port", str(cifar_pt), str(tmp_path / "out.pt")]
    assert main(argv) == EXIT_ERROR
    line = _one_error_line(capsys.readouterr().err)
    assert "RuntimeError: boom" in line and "--debug" in line
    assert main([*argv, "--debug"]) == EXIT_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_files_of_two_variants_are_named_not_fed_to_keras(tmp_path, capsys, paper_keras, cifar_pt):
    import alexnet_keras

    alexnet_keras.save_weights(paper_keras, tmp_path / "paper.keras")
    assert main(["check", "--torch", str(cifar_pt), "--keras", str(tmp_path / "paper.keras")]) == EXIT_ERROR
    line = _one_error_line(capsys.readouterr().err)
    assert "'cifar'" in line and "'paper'" in line and "different networks" in line


def test_a_name_too_long_exits_2(tmp_path, capsys, cifar_pt):
    assert main(["port", str(cifar_pt), str(tmp_path / ("x" * 300 + ".pt"))]) == EXIT_ERROR
    assert "too long" in _one_error_line(capsys.readouterr().err)


# alexnet-predict


def _png(tmp_path, size=(80, 80)):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.full((*size, 3), 120, np.uint8)).save(path)
    return path


def test_predict_offline_says_what_to_do(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(alexnet_torch, "build", offline)
    assert predict.main([str(_png(tmp_path)), "--framework", "torch"]) == EXIT_ERROR
    line = _one_error_line(capsys.readouterr().err, "alexnet-predict")
    assert "could not get IMAGENET1K_V1" in line and "--weights random" in line


def test_predict_refuses_a_decompression_bomb(tmp_path, capsys, monkeypatch):
    from PIL import Image

    path = _png(tmp_path, (200, 200))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 200x200 image now counts as a bomb
    assert predict.main([str(path), "--weights", "random"]) == EXIT_ERROR
    assert "more pixels than PIL opens safely" in _one_error_line(capsys.readouterr().err, "alexnet-predict")


def test_predict_a_directory_and_cifar_are_refused_before_any_model_loads(tmp_path, capsys, monkeypatch):
    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(predict, "load_models", no_models)
    assert predict.main([str(tmp_path), "--weights", "random"]) == EXIT_ERROR
    assert "is a directory" in _one_error_line(capsys.readouterr().err, "alexnet-predict")
    assert predict.main([str(_png(tmp_path)), "--variant", "cifar", "--weights", "random"]) == EXIT_ERROR
    assert "1000 classes" in _one_error_line(capsys.readouterr().err, "alexnet-predict")


def test_every_option_of_both_programs_has_help():
    from alexnet_cli.parity import parser as parity_parser

    parsers = [predict.parser()]
    root = parity_parser()
    parsers += [p for a in root._actions if hasattr(a, "choices") and isinstance(a.choices, dict) for p in a.choices.values()]
    for p in parsers:
        for action in p._actions:
            assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help text"


# TensorFlow's banners


FILTER_PROBE = """
import ctypes, os, sys
from alexnet_cli.console import filtered_stderr
with filtered_stderr():
    os.write(2, BANNER)
    line = b"W0000 00:00:1764300000.5   7 cpu_feature_guard.cc:210] written by C\\n"
    ctypes.CDLL(None).write(2, line, len(line))
    os.write(2, b"a line of our own\\n")
    print("and Python's own", file=sys.stderr)
print("after the filter", file=sys.stderr)
"""


def test_the_filter_drops_native_banners_and_passes_the_rest():
    out = subprocess.run([sys.executable, "-c", f"BANNER = {BANNER!r}\n" + FILTER_PROBE], capture_output=True,
                         env=subprocess_env(), cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.decode().splitlines() == ["a line of our own", "and Python's own", "after the filter"]


# Loaded as sitecustomize: TensorFlow's import (not a mere lookup: torch's dynamo looks it up) first
# writes the stand-in banner to file descriptor 2, as TensorFlow's runtime does on some CPUs.
STAND_IN_BANNER = """
import importlib.machinery, os, sys

class Banner:
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and not getattr(spec.loader, "banner", False):
            exec_module = spec.loader.exec_module
            def noisy(module):
                os.write(2, {banner!r})
                return exec_module(module)
            spec.loader.exec_module, spec.loader.banner = noisy, True
        return spec

sys.meta_path.insert(0, Banner())
"""


def test_the_cli_keeps_tensorflow_banners_off_stderr_on_any_cpu(tmp_path):
    """Makes every CPU behave like one whose TensorFlow prints its banners at import: the CLI's
    stderr must hold none of them, whatever this machine's CPU is."""
    (tmp_path / "sitecustomize.py").write_text(STAND_IN_BANNER.format(banner=BANNER))
    env = subprocess_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    out = subprocess.run([sys.executable, "-m", "parity", "check", "--variant", "cifar", "--batch", "1"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PASS: cifar" in out.stdout
    assert not BANNER_LINES & set(out.stderr.splitlines()), out.stderr
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=300)
    assert BANNER_LINES <= set(probe.stderr.splitlines())  # the stand-in does reach an unfiltered import


def test_a_failed_multi_worker_job_is_the_users_message_not_a_bug():
    """A dead worker is the job's failure, said with what to do (--resume), not "This is a bug"."""
    from alexnet_cli.console import describe
    from alexnet_keras.distributed import WorkerFailed

    message = "worker 1 of 2 exited with code 2; the other workers stopped. ... with --resume to continue from it."
    assert describe(WorkerFailed(f"multi-worker training stopped: {message}")) == \
        f"multi-worker training stopped: {message}"
