"""alexnet_torch.optim.DecoupledSGD: Keras's decoupled weight decay inside torch.optim.SGD, the one
place PyTorch training here applies weight decay."""

import pytest
import torch
import torch.nn.functional as F

from alexnet_torch.optim import DecoupledSGD
from alexnet_torch.training import sgd, train_step

LR, MOMENTUM, WD = 0.1, 0.9, 0.05  # large enough that a convention shows far above rounding


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _batches(n=3):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def _states(model, optimizer, before_step=lambda: None, n=3):
    """The parameters after each of ``n`` steps of forward, loss, zero_grad, backward, step."""
    out = []
    for x, y in _batches(n):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        before_step()
        optimizer.step()
        out.append({k: v.detach().clone() for k, v in model.named_parameters()})
    return out


def test_decoupled_sgd_is_the_inline_formula_it_replaces():
    """The loop alexnet_torch.training and parity.steps each wrote before: SGD without weight decay,
    and ``p -= lr * wd * p`` for every parameter after backward, before ``step``. Bit for bit."""
    shipped = _model()
    got = _states(shipped, DecoupledSGD(shipped.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD))
    inline = _model()
    params = list(inline.parameters())

    def decay():
        with torch.no_grad():
            for p in params:
                p.add_(p, alpha=-LR * WD)

    want = _states(inline, torch.optim.SGD(params, lr=LR, momentum=MOMENTUM), decay)
    for a, b in zip(got, want):
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_it_differs_from_torch_sgds_coupled_weight_decay_from_the_second_step():
    """Step 1 is the same update (zero velocity); step 2 is not: PyTorch's ``weight_decay`` adds
    ``wd * w`` to the gradient, which then runs through the momentum."""
    a, b = _model(), _model()
    decoupled = _states(a, DecoupledSGD(a.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD), n=2)
    coupled = _states(b, torch.optim.SGD(b.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD), n=2)
    step1 = max(float((decoupled[0][k] - coupled[0][k]).abs().max()) for k in decoupled[0])
    step2 = max(float((decoupled[1][k] - coupled[1][k]).abs().max()) for k in decoupled[1])
    assert step1 < 1e-6  # fp32 rounding of the same update
    assert step2 > 1e-3  # lr * momentum * wd * w of the first step's decay, through the velocity


def test_sgds_own_weight_decay_stays_off():
    model = _model()
    optimizer = DecoupledSGD([{"params": model[0].parameters()}, {"params": model[3].parameters()}],
                             lr=LR, momentum=MOMENTUM, weight_decay=WD)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]  # SGD's coupled path
    assert optimizer.decoupled_weight_decay == WD
    with pytest.raises(ValueError, match="coupled weight_decay"):
        DecoupledSGD([{"params": model[0].parameters(), "weight_decay": WD}], lr=LR)


def test_a_plain_sgd_checkpoint_loads_and_keeps_the_decay():
    """A run resumed from a checkpoint of plain SGD (what alexnet-train saved before) takes its
    momentum and keeps the recipe's decoupled decay, which is the optimizer's, not the file's."""
    a = _model()
    plain = torch.optim.SGD(a.parameters(), lr=LR, momentum=MOMENTUM)
    _states(a, plain, n=1)
    resumed = DecoupledSGD(a.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    resumed.load_state_dict(plain.state_dict())
    assert resumed.decoupled_weight_decay == WD and resumed.param_groups[0]["weight_decay"] == 0
    assert all("momentum_buffer" in s for s in resumed.state.values())


def test_step_hooks_run_once():
    """The decay is a step pre-hook: a user's own hooks still run once each, in order."""
    model = _model()
    torch.optim.SGD(model.parameters(), lr=LR)  # wraps torch.optim.SGD.step
    optimizer = DecoupledSGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    calls = []
    optimizer.register_step_pre_hook(lambda *args: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *args: calls.append("post"))
    _states(model, optimizer, n=1)
    assert calls == ["pre", "post"]


def test_train_step_on_probabilities_is_cross_entropy_on_the_logits():
    """``train_step(probabilities=True)`` on a softmax output takes the step a logits model takes."""
    logits = _model()
    probabilities = torch.nn.Sequential(_model(), torch.nn.Softmax(dim=1))
    (x, y), = _batches(1)
    results = []
    for model, on_probabilities in ((logits, False), (probabilities, True)):
        optimizer = sgd(model, lr=LR, momentum=MOMENTUM, weight_decay=WD)
        loss, output = train_step(model, optimizer, x, y, probabilities=on_probabilities)
        assert not loss.requires_grad and not output.requires_grad
        results.append((loss, [p.detach().clone() for p in model.parameters()]))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
