"""SGD and Adam: PyTorch's update rules (against torch with the weights copied across, and
closed forms), in-place semantics, training decreases the loss, parameter groups, errors."""
import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn
import tracegrad.nn.functional as F


def _np(t):
    return t.detach().numpy()


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _data():
    rng = np.random.default_rng(1)
    return (rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16))


def _torch_twin(T, model):
    twin = T.nn.Sequential(T.nn.Linear(4, 8), T.nn.Tanh(), T.nn.Linear(8, 3))
    with T.no_grad():
        for (_, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
            q.copy_(T.tensor(_np(p)))
    return twin


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.01),
             dict(lr=0.1, weight_decay=0.1, maximize=True)]
ADAM_CASES = [dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05),
              dict(lr=0.02, amsgrad=True), dict(lr=0.01, maximize=True)]


@pytest.mark.parametrize("name,kw", [("SGD", k) for k in SGD_CASES] + [("Adam", k) for k in ADAM_CASES])
def test_steps_match_torch(name, kw):
    T = pytest.importorskip("torch")
    model = _mlp()
    twin = _torch_twin(T, model)
    opt = getattr(torch.optim, name)(model.parameters(), **kw)
    topt = getattr(T.optim, name)(twin.parameters(), **kw)
    x, y = _data()
    for _ in range(4):
        opt.zero_grad()
        topt.zero_grad()
        loss = F.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
        tloss = T.nn.functional.cross_entropy(twin(T.tensor(x)), T.tensor(y))
        assert abs(loss.item() - tloss.item()) < 1e-5
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert np.allclose(_np(p), q.detach().numpy(), atol=2e-5)


def test_sgd_is_p_minus_lr_grad():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([p], lr=0.5)
    (p * p).sum().backward()  # grad = 2p
    opt.step()
    assert p.tolist() == [0.0, 0.0]


def test_adam_first_step_moves_each_weight_by_lr():
    # after one step m/sqrt(v) (bias corrected) is sign(g), so each weight moves by ~lr
    p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = torch.optim.Adam([p], lr=0.1)
    (p * torch.tensor([1.0, 5.0, -0.01])).sum().backward()
    opt.step()
    assert np.allclose(_np(p), [0.9, -2.1, 3.1], atol=1e-5)
    assert opt.state[p]["step"] == 1


def test_updates_are_in_place_on_the_same_parameter_objects():
    model = _mlp()
    params = list(model.parameters())
    versions = [p._version for p in params]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(p._version > v for p, v in zip(params, versions))
    assert all(p.is_leaf and p.requires_grad and p.grad_fn is None for p in params)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.5)), ("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("Adam", dict(lr=0.05))])
def test_training_decreases_the_loss(name, kw):
    model = _mlp()
    opt = getattr(torch.optim, name)(model.parameters(), **kw)
    x, y = (torch.tensor(a) for a in _data())
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_zero_grad_and_params_without_grad_are_skipped():
    a = nn.Parameter(torch.ones(2))
    b = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    opt.step()  # b has no grad: untouched
    assert a.tolist() == [-2.0, -2.0] and b.tolist() == [1.0, 1.0]
    opt.zero_grad(set_to_none=False)
    assert a.grad.tolist() == [0.0, 0.0] and b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_take_their_own_options():
    a = nn.Parameter(torch.ones(1))
    b = nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a + b).sum().backward()
    opt.step()
    assert np.allclose(_np(a), [0.9]) and np.allclose(_np(b), [0.5])


def test_adam_state_dict_round_trip_continues_identically():
    x, y = (torch.tensor(a) for a in _data())

    def run(model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    m1 = _mlp()
    o1 = torch.optim.Adam(m1.parameters(), lr=0.01)
    run(m1, o1, 2)
    m2 = _mlp(seed=5)
    m2.load_state_dict(m1.state_dict())
    o2 = torch.optim.Adam(m2.parameters(), lr=0.01)
    o2.load_state_dict(o1.state_dict())
    run(m1, o1, 2)
    run(m2, o2, 2)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.allclose(_np(p), _np(q), atol=1e-7)


def test_optimizer_errors_read_like_pytorch():
    p = nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        torch.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got "
                                        "tracegrad.FloatTensor"):
        torch.optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        torch.optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        torch.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        torch.optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        torch.optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        torch.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    # a valid optimizer over the same parameter still works afterwards
    opt = torch.optim.SGD([p], lr=0.1)
    (p * 1).sum().backward()
    opt.step()
    assert np.allclose(_np(p), [0.9])
