"""Training-mode parity of the cifar network: it passes, and it fails when a convention is wrong."""

import pytest
import torch

import alexnet_torch
from parity import compare, random_batch, torch_to_keras
from parity.randomize import randomize_torch
from parity.steps import STEP_RTOL, TRAIN_RTOL, check_train_step


def cifar(seed=0, **options):
    return randomize_torch(alexnet_torch.build("cifar", dropout=0.0, **options), seed)


@pytest.fixture(scope="module")
def report():
    return check_train_step("cifar", seed=0, steps=2)


def test_two_sgd_steps_agree_and_sit_at_the_float64_floor(report):
    assert report.ok, report
    assert report.settings["loss"] == "probabilities"
    assert len(report.losses) == 2 and report.losses[1]["float64"] < report.losses[0]["float64"]
    for row in report.forward.rows:  # each framework near float64 on its own
        assert row.torch_vs_f64 < TRAIN_RTOL and row.keras_vs_f64 < TRAIN_RTOL, row
    assert len(report.steps) == 2 * 27  # 9 conv/dense + 9 x (gamma/beta, moving statistics), per step
    for row in report.steps:
        if "moving" in row.weights or row.layer.endswith(("1", "2", "3", "4", "5", "predictions")):
            assert row.torch_vs_f64 < STEP_RTOL and row.keras_vs_f64 < STEP_RTOL, row
    text = str(report)
    assert "PASS: cifar training" in text and "moving_mean, moving_variance" in text
    assert report.to_dict()["ok"] is True


def test_unbiased_running_variance_alone_fails():
    """PyTorch's own BatchNorm with Keras's epsilon and momentum: only the running variance differs
    (PyTorch's default momentum is caught by tests/test_cifar_layers.py at the layer)."""
    module = cifar()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.__class__ = torch.nn.BatchNorm2d if m.__class__.__name__.endswith("2dKeras") else torch.nn.BatchNorm1d
    report = check_train_step(module=module, steps=1, batch=4)
    assert not report.ok
    assert report.forward.ok  # batch statistics normalize alike; only the running update differs
    failed = [r for r in report.steps if not r.ok]
    assert failed and all("moving" in r.weights for r in failed)
    assert max(r.max_rel for r in failed) > 100 * STEP_RTOL
    assert "moving_mean, moving_variance" in report.verdict()


def _spy(monkeypatch):
    """Count the calls of the shipped training functions (the check imports them when it runs)."""
    import alexnet_keras.training as keras_training
    import alexnet_torch.training as torch_training

    calls = []
    for module, name in ((torch_training, "sgd"), (torch_training, "train_step"), (keras_training, "compile_for_training")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    return calls


def test_the_check_trains_with_the_shipped_steps(monkeypatch):
    """fp32 and float64 torch take alexnet_torch.training.train_step with the optimizer alexnet-train
    makes; Keras trains the model alexnet_keras.training.compile_for_training compiled."""
    calls = _spy(monkeypatch)
    report = check_train_step(seed=0, steps=1, batch=4)
    assert report.ok, report
    assert sorted(calls) == ["compile_for_training", "sgd", "sgd", "train_step", "train_step"]


def test_coupled_weight_decay_fails_at_the_second_step(monkeypatch):
    """PyTorch's own ``SGD(weight_decay=...)`` handed to the shipped train_step in place of
    DecoupledSGD: the same first step, a different second one, and the check says so."""
    calls = _spy(monkeypatch)
    report = check_train_step(seed=0, steps=2, batch=4, torch_weight_decay="coupled")
    assert calls.count("train_step") == 4 and calls.count("sgd") == 1  # the float64 run keeps DecoupledSGD
    assert not report.ok
    assert all(r.ok for r in report.steps if r.step == 1)  # identical first step: zero velocity
    bad = [r for r in report.steps if r.step == 2 and not r.ok]
    worst = max(bad, key=lambda r: r.max_rel)
    assert worst.max_rel > 10 * STEP_RTOL
    assert worst.torch_vs_f64 > 10 * worst.keras_vs_f64  # Keras stays at float64: torch is the wrong one


def test_wrong_epsilon_fails_the_training_forward():
    """The forward half of the check (parity.compare in training mode), with PyTorch's default eps."""
    module = cifar()
    keras_model = torch_to_keras(module, dropout=0.0)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eps = 1e-5
    report = compare(module, keras_model, random_batch((8, 3, 32, 32), 1), rtol=TRAIN_RTOL, training=True)
    assert not report.ok
    assert report.first_failure.layer == "conv1_bn"
    assert max(r.max_rel for r in report.rows) > 10 * TRAIN_RTOL  # 1e-2 at the output


def test_active_dropout_is_refused():
    with pytest.raises(ValueError, match="dropout=0.0"):
        check_train_step(module=alexnet_torch.build("cifar"))
    with pytest.raises(ValueError, match="at least 2"):
        check_train_step(batch=1)


def test_cli_train_step_exit_codes(capsys):
    from alexnet_cli.parity import main

    args = ["check", "--variant", "cifar", "--train-step", "--steps", "1", "--batch", "4"]
    assert main(args + ["--option", "logits=true"]) == 0  # the logits model trains alike too
    out = capsys.readouterr().out
    assert "PASS: cifar training" in out and "loss=logits" in out
    # a tolerance below fp32's rounding cannot be met: exit 1, naming the first diverging layer
    assert main(args + ["--rtol", "1e-9"]) == 1
    assert "FAIL: cifar training forward" in capsys.readouterr().out
    assert main(["check", "--torch", "a.pt", "--keras", "b.keras", "--train-step"]) == 2
    assert "--train-step checks a seeded random model" in capsys.readouterr().err
