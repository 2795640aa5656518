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


@pytest.mark.parametrize("epochs", [1, 2])
def test_resuming_a_finished_run_with_no_more_epochs_is_refused(tmp_path, epochs):
    """A 2-epoch run, finished: ``--resume --epochs 1`` (or 2) has nothing to train. It used to exit 0
    and rewrite the model, ignoring the smaller --epochs."""
    from alexnet_training import runs

    config = runs.RunConfig(framework="torch", variant="cifar", recipe="cifar", data="digits", epochs=2,
                            batch_size=32, seed=0, num_classes=10, options={}, lr=0.01)
    runs.start(tmp_path, config, force=False)
    rows = [{"epoch": e, "train_loss": 1.0, "train_top1": 0.5, "val_loss": 1.0, "val_top1": 0.5, "val_top5": 0.9,
             "lr": 0.01, "seconds": 1.0} for e in (1, 2)]
    runs.write_metrics(tmp_path, rows)
    (tmp_path / runs.CHECKPOINTS["torch"]).write_bytes(b"checkpoint")
    (tmp_path / runs.FINAL_WEIGHTS).write_bytes(b"weights")
    shorter = runs.RunConfig(**{**vars(config), "epochs": epochs})
    with pytest.raises(ValueError, match="finished 2 epochs.*larger --epochs"):
        runs.prepare(tmp_path, shorter, resume=True, force=False)
    longer = runs.RunConfig(**{**vars(config), "epochs": 3})
    assert runs.prepare(tmp_path, longer, resume=True, force=False) == config
    (tmp_path / runs.FINAL_WEIGHTS).unlink()  # killed after its last checkpoint, before the model was written
    assert runs.prepare(tmp_path, runs.RunConfig(**{**vars(config)}), resume=True, force=False) == config
