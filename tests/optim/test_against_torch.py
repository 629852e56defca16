"""Every optimizer and scheduler against PyTorch over 50 steps: parameters, every state
entry and the learning rate, table-driven (torch behind importorskip)."""
import math

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
import tracegrad.nn.functional as F

T = pytest.importorskip("torch")

STEPS = 50
CHECKED = {0, 1, 2, 10, 25, STEPS - 1}  # steps whose full state is compared (all: slow)


def _np(t):
    return t.detach().numpy() if isinstance(t, tg.Tensor) else t.detach().numpy()


def _pair(seed=0):
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    twin = T.nn.Sequential(T.nn.Linear(4, 8), T.nn.Tanh(), T.nn.Linear(8, 3))
    with T.no_grad():
        for p, q in zip(model.parameters(), twin.parameters()):
            q.copy_(T.tensor(_np(p)))
    return model, twin


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)


def _close(a, b, what, rtol=2e-4, atol=2e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    assert np.allclose(a, b, rtol=rtol, atol=atol), f"{what}: max diff {np.abs(a - b).max()}"


def _compare_state(opt, topt, step):
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"]), step
    for i, s in theirs["state"].items():
        assert sorted(ours["state"][i]) == sorted(s), (step, i)
        for k, v in s.items():
            w = ours["state"][i][k]
            if isinstance(v, T.Tensor):
                assert isinstance(w, tg.Tensor) and str(w.dtype)[10:] == str(v.dtype)[6:], k
                _close(_np(w), v.numpy(), f"step {step} state[{i}][{k}]")
            else:
                assert w == v, k
    for g, h in zip(ours["param_groups"], theirs["param_groups"]):
        assert set(h) <= set(g) | {"param_names"}, set(h) - set(g)
        for k, v in h.items():
            if isinstance(v, float):
                assert math.isclose(g[k], v, rel_tol=1e-12, abs_tol=1e-15), (step, k)
            else:
                assert g[k] == v, (step, k)


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, maximize=True)),
    ("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.02, amsgrad=True)), ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, alpha=0.9, maximize=True)),
    ("Adagrad", dict(lr=0.1)), ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                                initial_accumulator_value=0.1)),
    ("Adamax", dict(lr=0.01)), ("Adamax", dict(lr=0.01, weight_decay=0.01, betas=(0.8, 0.99))),
    ("NAdam", dict(lr=0.01)), ("NAdam", dict(lr=0.01, weight_decay=0.01, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01, weight_decay=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.9, 0.9))),
]


def _ids(cases):
    return [f"{n}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for n, kw in cases]


def _train_pair(make_opt, make_sched=None, steps=STEPS, sched_arg=None, train=True):
    """Step both optimizers (after a forward and backward on the same data, if ``train``)
    and schedulers ``steps`` times, comparing learning rates every step and state and
    parameters at the CHECKED steps."""
    model, twin = _pair()
    opt, topt = make_opt(tg, model), make_opt(T, twin)
    sched = tsched = None
    if make_sched is not None:
        sched, tsched = make_sched(tg, opt), make_sched(T, topt)
    x, y = _data()
    for step in range(steps):
        if train:
            opt.zero_grad()
            topt.zero_grad()
            F.cross_entropy(model(tg.tensor(x)), tg.tensor(y)).backward()
            T.nn.functional.cross_entropy(twin(T.tensor(x)), T.tensor(y)).backward()
        opt.step()
        topt.step()
        if sched is not None:
            if sched_arg is not None:
                sched.step(sched_arg(step))
                tsched.step(sched_arg(step))
            else:
                sched.step()
                tsched.step()
            ours, theirs = sched.get_last_lr(), tsched.get_last_lr()
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (step, ours, theirs)
        if step in CHECKED:
            _compare_state(opt, topt, step)
            for p, q in zip(model.parameters(), twin.parameters()):
                _close(_np(p), q.detach().numpy(), f"step {step} parameters")
    return opt, topt, sched, tsched


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=_ids(OPTIMIZERS))
def test_optimizer_matches_torch_over_50_steps(name, kw):
    _train_pair(lambda lib, m: getattr(lib.optim, name)(m.parameters(), **kw))


def test_param_groups_with_their_own_options_match_torch():
    def make(lib, m):
        return lib.optim.AdamW([{"params": m[0].parameters(), "lr": 0.02, "weight_decay": 0.0},
                                {"params": m[2].parameters()}], lr=0.01, betas=(0.85, 0.99))
    _train_pair(make)


def test_add_param_group_matches_torch():
    def make(lib, m):
        opt = lib.optim.SGD(m[0].parameters(), lr=0.1, momentum=0.9)
        opt.add_param_group({"params": m[2].parameters(), "lr": 0.01})
        return opt
    _train_pair(make)


def test_lbfgs_matches_torch():
    for kw in (dict(lr=0.5, max_iter=5, history_size=4),
               dict(lr=1, max_iter=8, line_search_fn="strong_wolfe")):
        model, twin = _pair()
        opt = tg.optim.LBFGS(model.parameters(), **kw)
        topt = T.optim.LBFGS(twin.parameters(), **kw)
        x, y = _data()

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(tg.tensor(x)), tg.tensor(y))
            loss.backward()
            return loss

        def tclosure():
            topt.zero_grad()
            loss = T.nn.functional.cross_entropy(twin(T.tensor(x)), T.tensor(y))
            loss.backward()
            return loss

        for _ in range(4):
            a, b = opt.step(closure), topt.step(tclosure)
            assert math.isclose(a.item(), b.item(), rel_tol=1e-4)
        s, ts = opt.state[next(iter(model.parameters()))], topt.state[next(iter(twin.parameters()))]
        assert s["func_evals"] == ts["func_evals"] and s["n_iter"] == ts["n_iter"]
        for p, q in zip(model.parameters(), twin.parameters()):
            _close(_np(p), q.detach().numpy(), "LBFGS parameters", rtol=1e-3, atol=1e-4)


def _sgd(lib, m):
    return lib.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)


def _adam(lib, m):
    return lib.optim.Adam(m.parameters(), lr=0.01)


S = "lr_scheduler"
SCHEDULERS = [
    ("LambdaLR", _sgd, lambda L, o: L.optim.lr_scheduler.LambdaLR(o, lambda e: 0.95 ** e)),
    ("MultiplicativeLR", _sgd, lambda L, o: L.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.97)),
    ("StepLR", _sgd, lambda L, o: L.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("MultiStepLR", _sgd, lambda L, o: L.optim.lr_scheduler.MultiStepLR(o, [5, 12, 12, 30], 0.3)),
    ("ConstantLR", _sgd, lambda L, o: L.optim.lr_scheduler.ConstantLR(o, factor=0.25, total_iters=9)),
    ("LinearLR", _sgd, lambda L, o: L.optim.lr_scheduler.LinearLR(o, 0.1, 0.9, total_iters=20)),
    ("ExponentialLR", _sgd, lambda L, o: L.optim.lr_scheduler.ExponentialLR(o, gamma=0.93)),
    ("CosineAnnealingLR", _sgd, lambda L, o: L.optim.lr_scheduler.CosineAnnealingLR(o, T_max=17, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", _sgd,
     lambda L, o: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2, eta_min=0.01)),
    ("OneCycleLR", _sgd, lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=60)),
    ("OneCycleLR-adam-linear-3phase", _adam, lambda L, o: L.optim.lr_scheduler.OneCycleLR(
        o, max_lr=[0.05], epochs=6, steps_per_epoch=10, anneal_strategy="linear", three_phase=True)),
    ("CyclicLR", _sgd, lambda L, o: L.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=5)),
    ("CyclicLR-triangular2", _sgd, lambda L, o: L.optim.lr_scheduler.CyclicLR(
        o, 0.01, 0.1, step_size_up=4, step_size_down=6, mode="triangular2")),
    ("CyclicLR-exp_range-adam", _adam, lambda L, o: L.optim.lr_scheduler.CyclicLR(
        o, 0.001, 0.01, step_size_up=3, mode="exp_range", gamma=0.97)),
    ("PolynomialLR", _sgd, lambda L, o: L.optim.lr_scheduler.PolynomialLR(o, total_iters=30, power=2.0)),
    ("SequentialLR", _sgd, lambda L, o: L.optim.lr_scheduler.SequentialLR(o, [
        L.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, total_iters=5),
        L.optim.lr_scheduler.CosineAnnealingLR(o, T_max=45)], milestones=[5])),
    ("ChainedScheduler", _sgd, lambda L, o: L.optim.lr_scheduler.ChainedScheduler([
        L.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=4),
        L.optim.lr_scheduler.ExponentialLR(o, gamma=0.95)])),
]


@pytest.mark.parametrize("name,make_opt,make_sched", SCHEDULERS, ids=[c[0] for c in SCHEDULERS])
def test_scheduler_matches_torch_over_50_steps(name, make_opt, make_sched):
    # the schedule does not depend on gradients: the optimizers step with none (cheap)
    _, _, sched, tsched = _train_pair(make_opt, make_sched, train=False)
    ours, theirs = sched.state_dict(), tsched.state_dict()
    assert set(ours) == set(theirs)
    for k in ("last_epoch", "_step_count", "base_lrs", "_last_lr"):
        if k in theirs:
            assert ours[k] == pytest.approx(theirs[k], rel=1e-12), k


def test_reduce_lr_on_plateau_matches_torch():
    losses = [1.0, 0.9, 0.91, 0.92, 0.93, 0.95, 0.85, 0.86, 0.87, 0.88, 0.89] * 5
    _, _, sched, tsched = _train_pair(
        _sgd, lambda L, o: L.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2, factor=0.5,
                                                                  cooldown=1, min_lr=1e-3),
        sched_arg=lambda step: losses[step], train=False)
    assert sched.num_bad_epochs == tsched.num_bad_epochs and sched.best == tsched.best


def test_scheduler_state_dict_resumes_identically():
    def run(n, state=None):
        model, _ = _pair()
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        sched = tg.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=40)
        if state is not None:
            opt.load_state_dict(state[0])
            sched.load_state_dict(state[1])
        lrs = []
        for _ in range(n):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        return lrs, (opt.state_dict(), sched.state_dict())
    full, _ = run(30)
    first, state = run(12)
    rest, _ = run(18, state)
    assert first + rest == full


def test_torch_optimizer_state_dict_loads_and_continues():
    model, twin = _pair()
    opt, topt = tg.optim.Adam(model.parameters(), lr=0.01), T.optim.Adam(twin.parameters(), lr=0.01)
    x, y = _data()
    for _ in range(3):
        topt.zero_grad()
        T.nn.functional.cross_entropy(twin(T.tensor(x)), T.tensor(y)).backward()
        topt.step()
    model.load_state_dict({k: tg.tensor(v.numpy()) for k, v in twin.state_dict().items()})
    sd = topt.state_dict()
    opt.load_state_dict({"state": {i: {k: tg.tensor(v.numpy()) for k, v in s.items()}
                                   for i, s in sd["state"].items()},
                         "param_groups": sd["param_groups"]})
    for _ in range(5):
        opt.zero_grad()
        topt.zero_grad()
        F.cross_entropy(model(tg.tensor(x)), tg.tensor(y)).backward()
        T.nn.functional.cross_entropy(twin(T.tensor(x)), T.tensor(y)).backward()
        opt.step()
        topt.step()
        _compare_state(opt, topt, "resumed")
