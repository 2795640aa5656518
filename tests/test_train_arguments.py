"""alexnet-train refuses impossible numbers in its argument parser: before any data is read or any
file is written, naming the flag (issue 19: ``--lr nan`` trained to NaN
weights and published them)."""

import subprocess
import sys

import pytest

from alexnet_cli import train
from alexnet_cli.console import EXIT_ERROR
from tests.reference import subprocess_env


@pytest.mark.parametrize("flag, value", [
    ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1"), ("--lr", "0"), ("--lr", "fast"),
    ("--seed", "-1"), ("--workers", "-1"), ("--precise-bn", "-5"),
    ("--dropout", "1.5"), ("--dropout", "nan"), ("--epochs", "0"), ("--batch-size", "-2"),
    ("--fault-timeout", "inf"),
])
def test_impossible_numbers_are_refused_by_the_parser_and_nothing_is_written(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    argv = ["--framework", "torch", "--variant", "cifar", "--data", "digits", "--out", str(out), flag, value]
    assert train.main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and value in err, err
    assert not out.exists()


def test_the_refusal_comes_before_any_framework_is_imported(tmp_path):
    """In a fresh interpreter: the refusal needs neither framework (a training start imports one
    and reads the data first, 10-15 s, before it found these)."""
    code = ("import sys; from alexnet_cli import train\n"
            f"code = train.main(['--framework', 'torch', '--variant', 'cifar', '--data', 'digits', '--out', "
            f"{str(tmp_path / 'run')!r}, '--lr', 'nan'])\n"
            "print(code, 'torch' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    code, torch_loaded, keras_loaded = out.stdout.split()
    assert (code, torch_loaded, keras_loaded) == (str(EXIT_ERROR), "False", "False"), out.stderr[-2000:]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["0", "0.5", "0.0"])
def test_legal_dropout_rates_parse(value):
    args = train.parser().parse_args(["--framework", "keras", "--variant", "cifar", "--data", "digits",
                                      "--out", "x", "--dropout", value])
    assert args.dropout == float(value)
