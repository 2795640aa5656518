"""Precise BatchNorm statistics: the float64 mean and variance of each layer's inputs, the same in
both frameworks, and what the training loops evaluate with."""

import copy

import numpy as np
import pytest

from alexnet_training.augment import Pipeline
from alexnet_training.data import load_digits, subset
from alexnet_training.precise_bn import batch_moments, combine_moments, precise_bn_batches
from alexnet_training.recipes import CIFAR

# fp32 against float64 over a forward pass with batch statistics: the fc layers' inputs carry
# ~2e-5 relative error (parity.steps.TRAIN_RTOL's measurement); a lagging moving average is off by
# far more (checked below: the statistics before the update fail the same comparison).
RTOL = 1e-4


def test_combined_moments_are_those_of_all_samples():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 1 + loc, size=(n, 5)) for loc, n in ((0.0, 7), (3.0, 16), (-1.0, 3))]
    mean, var = combine_moments([batch_moments(b) for b in batches])
    every = np.concatenate(batches)
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, every.var(0), rtol=1e-12)
    # pycls's mean of batch variances leaves out the spread of the batch means: not what is kept here
    assert not np.allclose(var, np.mean([b.var(0) for b in batches], axis=0), rtol=1e-2)
    # channels first (NCHW): one mean per channel over batch and space
    x = rng.normal(size=(4, 3, 2, 2))
    m, v, n = batch_moments(x, 1)
    np.testing.assert_allclose(m, x.transpose(1, 0, 2, 3).reshape(3, -1).mean(1), rtol=1e-12)
    assert n == 16 and v.shape == (3,)
    with pytest.raises(ValueError, match="at least one batch"):
        combine_moments([])


def _pipeline(seed=3):
    return Pipeline(subset(load_digits()[0], 80), CIFAR.augment, train=True, seed=seed, batch_size=16)


def _float64_reference(module, batches):
    """Each BatchNorm's inputs over all ``batches``, collected from a float64 copy of ``module``
    (training mode, dropout off), and their plain numpy mean and variance."""
    import torch

    t64 = copy.deepcopy(module).double().train()
    for m in t64.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    seen = {}
    norms = {name: m for name, m in t64.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    hooks = [m.register_forward_pre_hook(lambda m, a, name=name: seen.setdefault(name, []).append(
        a[0].detach().numpy().swapaxes(0, 1).reshape(a[0].shape[1], -1))) for name, m in norms.items()]
    with torch.no_grad():
        for x in batches:
            t64(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float64)))
    for h in hooks:
        h.remove()
    return {name: (np.concatenate(v, 1).mean(1), np.concatenate(v, 1).var(1)) for name, v in seen.items()}


def _assert_close(name, found, expected):
    scale = float(np.abs(expected).max())
    err = float(np.abs(np.asarray(found, np.float64) - expected).max())
    assert err <= RTOL * scale, f"{name}: max abs {err:.3e} of scale {scale:.3e}"


def test_torch_and_keras_set_the_float64_statistics_of_the_same_batches():
    import torch

    import alexnet_torch
    from alexnet_torch.training import update_bn_stats as torch_update
    from parity.models import torch_to_keras
    from parity.randomize import randomize_torch

    from alexnet_keras.training import update_bn_stats as keras_update

    # dropout 0.5: precise statistics switch it off, or the two frameworks would drop other units
    module = randomize_torch(alexnet_torch.build("cifar", dropout=0.5, logits=True), 0)
    keras_model = torch_to_keras(module, dropout=0.5)
    pipeline = _pipeline()
    batches = list(precise_bn_batches(pipeline, 1, 48))
    assert len(batches) == 3  # 48 samples at batch 16
    reference = _float64_reference(module, batches)
    torch_norms = {name: m for name, m in module.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    # the randomized statistics are nowhere near: the comparison below can fail
    with pytest.raises(AssertionError):
        _assert_close("fc1", torch_norms["classifier.1"].running_var.numpy(), reference["classifier.1"][1])

    assert torch_update(module, iter(batches)) == 9
    assert keras_update(keras_model, iter(batches)) == 9
    keras_norms = [layer for layer in keras_model.layers if "bn" in layer.name]
    for (name, m), layer in zip(torch_norms.items(), keras_norms):
        mean, var = reference[name]
        _assert_close(f"torch {name} mean", m.running_mean.numpy(), mean)
        _assert_close(f"torch {name} var", m.running_var.numpy(), var)
        _assert_close(f"keras {layer.name} mean", np.asarray(layer.moving_mean), mean)
        _assert_close(f"keras {layer.name} var", np.asarray(layer.moving_variance), var)


def test_update_restores_the_training_flags():
    import torch

    import alexnet_torch
    from alexnet_torch.training import update_bn_stats

    module = alexnet_torch.build("cifar", dropout=0.5, logits=True).eval()
    update_bn_stats(module, precise_bn_batches(_pipeline(), 0, 16))
    assert not any(m.training for m in module.modules())
    module.train()
    update_bn_stats(module, precise_bn_batches(_pipeline(), 0, 16))
    assert all(m.training for m in module.modules() if isinstance(m, torch.nn.Dropout))


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_training_evaluates_with_the_precise_statistics(tmp_path, framework):
    """After a run, each layer holds the statistics of its last epoch's first batches (recomputing
    them changes nothing), and the last metrics row's test loss is what those statistics give
    (Keras validates inside ``fit``: the callback must act before that)."""
    import torch  # noqa: F401  (first: see parity._triton)

    from alexnet_training import runs

    train_data, val_data = (subset(d, 48) for d in load_digits())
    config = runs.RunConfig(framework=framework, variant="cifar", recipe="cifar", data="digits limit=48", epochs=1,
                            batch_size=16, seed=0, num_classes=10, options={"logits": True, "dropout": 0.0},
                            lr=0.01, precise_bn=32)
    train_pipe = Pipeline(train_data, CIFAR.augment, train=True, seed=0, batch_size=16)
    val_pipe = Pipeline(val_data, CIFAR.augment, train=False, seed=0, batch_size=16)
    runs.start(tmp_path, config, force=False)
    if framework == "torch":
        import alexnet_torch
        from alexnet_torch.training import data_loader, evaluate, train, update_bn_stats

        torch.manual_seed(0)
        model = alexnet_torch.build("cifar", 10, **config.options)
        rows = train(model, CIFAR, train_pipe, val_pipe, tmp_path, config, progress=False)
        stats = lambda: [np.concatenate([m.running_mean.numpy(), m.running_var.numpy()])  # noqa: E731
                         for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        val = lambda: evaluate(model, data_loader(val_pipe))  # noqa: E731
    else:
        import keras

        import alexnet_keras
        from alexnet_keras.training import evaluate, train, update_bn_stats

        keras.utils.set_random_seed(0)
        model = alexnet_keras.build("cifar", 10, **config.options)
        rows = train(model, CIFAR, train_pipe, val_pipe, tmp_path, config, progress=False)
        stats = lambda: [np.concatenate([np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)])  # noqa: E731
                         for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        val = lambda: evaluate(model, val_pipe)  # noqa: E731
    stored = stats()
    update_bn_stats(model, precise_bn_batches(train_pipe, 0, 32))
    for before, after in zip(stored, stats()):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6 * float(np.abs(after).max()))
    loss, _, _ = val()
    assert rows[-1]["val_loss"] == pytest.approx(loss, rel=1e-4)
