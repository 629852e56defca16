"""The whole training step as one compiled program: backward() and optimizer.step() inside
``tracegrad.compile``. 100 compiled steps equal 100 eager steps (to float32 rounding: the
program is fused by XLA, eager runs op by op), each compiled step is one jitted call, the
``.grad``, parameters and ``optimizer.state_dict()`` read as eager's after the call, and
hyperparameters changed between calls take effect without a retrace."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler import GraphBreak

RS = np.random.RandomState(0)
X = RS.randn(16, 6).astype(np.float32)
Y = RS.randint(0, 3, 16)
X2 = RS.randn(16, 6).astype(np.float32)
Y2 = RS.randint(0, 3, 16)


def _weights(sizes):
    rs = np.random.RandomState(1)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out += [rs.randn(b, a).astype(np.float32) * 0.5, rs.randn(b).astype(np.float32) * 0.1]
    return out


def _model(lib, sizes=(6, 8, 8, 3)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(lib.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(lib.nn.Tanh())
    model = lib.nn.Sequential(*layers)
    with lib.no_grad():
        for p, w in zip(model.parameters(), _weights(sizes)):
            p.copy_(lib.tensor(w))
    return model


OPTS = {
    "sgd": lambda lib, ps: lib.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1),
    "sgd_nesterov_wd": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                                     weight_decay=1e-2),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=1e-2),
    "adam_amsgrad_wd": lambda lib, ps: lib.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99),
                                                      weight_decay=1e-2, amsgrad=True),
}


def _count_calls(step):
    """Wrap the jitted program of the step's cache entry: every compiled call is counted."""
    entry = step._last
    calls = []
    fwd = entry.fwd

    def counted(*a):
        calls.append(1)
        return fwd(*a)
    entry.fwd = counted
    return calls


def _close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol * 10, atol=tol)


def _state(opt):
    sd = opt.state_dict()
    return {k: {n: (v.numpy() if isinstance(v, tg.Tensor) else v) for n, v in s.items()}
            for k, s in sd["state"].items()}, sd["param_groups"]


def _assert_same_state(o1, o2, tol=1e-6):
    (s1, g1), (s2, g2) = _state(o1), _state(o2)
    assert g1 == g2 and s1.keys() == s2.keys()
    for k in s1:
        assert s1[k].keys() == s2[k].keys()
        for n in s1[k]:
            if isinstance(s1[k][n], np.ndarray):
                _close(s2[k][n], s1[k][n], tol)
            else:
                assert s1[k][n] == s2[k][n]


def _run(opt_name, compiled, steps, sizes=(6, 8, 8, 3)):
    model = _model(tg, sizes)
    opt = OPTS[opt_name](tg, model.parameters())

    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    step = tg.compile(train_step, fullgraph=True) if compiled else train_step
    x, y = tg.tensor(X), tg.tensor(Y)
    losses = [step(x, y)]
    losses.append(step(x, y))  # (compiled: the first step ran eagerly, this one traced)
    calls = _count_calls(step) if compiled else []
    for _ in range(steps - 2):
        losses.append(step(x, y))
    return model, opt, [float(l) for l in losses], step, calls


@pytest.mark.parametrize("opt_name", list(OPTS))
def test_100_compiled_steps_equal_100_eager_steps(opt_name):
    m_e, o_e, l_e, _, _ = _run(opt_name, False, 100)
    m_c, o_c, l_c, step, calls = _run(opt_name, True, 100)
    _close(l_c, l_e, 1e-6)
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy(), 1e-6)
        assert isinstance(p.grad._data.value, jax.Array)  # concrete after the call
        _close(p.grad.numpy(), q.grad.numpy(), 1e-6)
    _assert_same_state(o_e, o_c)
    s = step.stats
    first_eager = 0 if opt_name == "sgd" else 1  # plain SGD has no state to create
    assert s["eager_first_steps"] == first_eager and s["graph_breaks"] == 0
    assert s["traces"] == 1 + first_eager
    assert len(calls) == 98  # one jitted call per step, and no other program ran
    assert s["joint_calls"] == 0


def test_every_layer_gets_its_gradient():
    # the old bug: the gradient of every layer but the last read a stale weight
    def grads(compiled):
        model = _model(tg, (6, 8, 8, 8, 3))

        def f(x, y):
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
        g = tg.compile(f, fullgraph=True) if compiled else f
        for _ in range(3):
            g(tg.tensor(X), tg.tensor(Y))
            with tg.no_grad():
                for p in model.parameters():
                    p.mul_(0.9)  # the weights change between calls: the program reads them
        return [p.grad.numpy() for p in model.parameters()]
    for a, b in zip(grads(True), grads(False)):
        _close(a, b, 1e-6)


def test_gradients_equal_jax_grad():
    W = _weights((6, 8, 3))
    model = _model(tg, (6, 8, 3))

    @tg.compile(fullgraph=True)
    def f(x, y):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    f(tg.tensor(X), tg.tensor(Y))

    def loss_j(w1, b1, w2, b2):
        logits = jax.numpy.tanh(X @ w1.T + b1) @ w2.T + b2
        return -jax.numpy.mean(jax.nn.log_softmax(logits)[np.arange(16), Y])
    for p, g in zip(model.parameters(), jax.grad(loss_j, argnums=(0, 1, 2, 3))(*W)):
        _close(p.grad.numpy(), g, 1e-6)


def test_gradient_accumulation_and_zero_grad_to_zeros():
    def run(compiled):
        model = _model(tg)
        opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

        def step(x, y, x2, y2):
            opt.zero_grad(set_to_none=False)
            (F.cross_entropy(model(x), y) / 2).backward()
            (F.cross_entropy(model(x2), y2) / 2).backward()  # accumulates onto .grad
            opt.step()
        s = tg.compile(step, fullgraph=True) if compiled else step
        args = [tg.tensor(a) for a in (X, Y, X2, Y2)]
        for _ in range(20):
            s(*args)
        return model, opt, s
    (m_e, o_e, _), (m_c, o_c, s) = run(False), run(True)
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy())
        _close(p.grad.numpy(), q.grad.numpy())
    _assert_same_state(o_e, o_c)
    # the first call makes the momentum buffers (eagerly); the second is traced with .grad
    # there (zeroed in place, then accumulated into) and is the program of every later call
    assert s.stats["traces"] == 2 and s.stats["eager_first_steps"] == 1
    assert s.stats["hits"] == 18


def test_grad_accumulates_in_place_onto_an_existing_grad():
    model = _model(tg)
    model2 = _model(tg)
    x, y = tg.tensor(X), tg.tensor(Y)
    F.cross_entropy(model(x), y).backward()
    F.cross_entropy(model2(x), y).backward()
    objs = [p.grad for p in model.parameters()]

    @tg.compile(fullgraph=True)
    def more(x, y):
        F.cross_entropy(model(x), y).backward()
    more(x, y)
    more(x, y)
    for _ in range(2):
        F.cross_entropy(model2(x), y).backward()
    for p, q, o in zip(model.parameters(), model2.parameters(), objs):
        assert p.grad is o  # the same .grad object, added into (as eager)
        _close(p.grad.numpy(), q.grad.numpy())


def test_lr_and_weight_decay_changes_take_effect_without_a_retrace():
    def run(compiled):
        model = _model(tg)
        opt = tg.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)

        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        s = tg.compile(step, fullgraph=True) if compiled else step
        for i in range(12):
            opt.param_groups[0]["lr"] = 1e-2 / (1 + i)
            opt.param_groups[0]["weight_decay"] = 1e-3 * (i % 3 + 1)
            opt.param_groups[0]["betas"] = (0.9, 0.99 if i < 6 else 0.999)
            s(tg.tensor(X), tg.tensor(Y))
        return model, opt, s
    (m_e, o_e, _), (m_c, o_c, s) = run(False), run(True)
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy())
    _assert_same_state(o_e, o_c)
    assert s.stats["traces"] == 2 and s.stats["hits"] == 10  # no miss after the trace


def test_a_branch_change_retraces():
    model = _model(tg)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    @tg.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    step(tg.tensor(X), tg.tensor(Y))
    opt.param_groups[0]["weight_decay"] = 0.1  # weight decay now on: another program
    step(tg.tensor(X), tg.tensor(Y))
    assert step.stats["traces"] == 2 and "weight_decay != 0" in step.stats["miss_reasons"][-1]


def test_frozen_layer_and_eval_under_no_grad_inside():
    def run(compiled):
        model = _model(tg)
        for p in model[0].parameters():
            p.requires_grad_(False)
        opt = tg.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)

        def step(x, y, xv, yv):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            with tg.no_grad():
                return F.cross_entropy(model(xv), yv)
        s = tg.compile(step, fullgraph=True) if compiled else step
        ev = [float(s(*[tg.tensor(a) for a in (X, Y, X2, Y2)])) for _ in range(15)]
        return model, ev
    (m_e, ev_e), (m_c, ev_c) = run(False), run(True)
    _close(ev_c, ev_e)
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy())
        assert (p.grad is None) == (q.grad is None)
    assert m_c[0].weight.grad is None
    np.testing.assert_array_equal(m_c[0].weight.detach().numpy(), _weights((6, 8, 8, 3))[0])


def test_eager_and_compiled_steps_mix():
    def run(pattern):
        model = _model(tg)
        opt = tg.optim.Adam(model.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        cs = tg.compile(step, fullgraph=True)
        for c in pattern:
            (cs if c == "c" else step)(tg.tensor(X), tg.tensor(Y))
        return model, opt
    m_e, o_e = run("eeeeeeee")
    m_c, o_c = run("ecceccee")
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy())
        _close(p.grad.numpy(), q.grad.numpy())
    _assert_same_state(o_e, o_c)


def test_a_leaf_the_backward_does_not_reach_keeps_its_grad():
    model = _model(tg)
    other = tg.ones(3, requires_grad=True)
    (other * 2).sum().backward()

    @tg.compile(fullgraph=True)
    def f(x, y):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        return other * 1
    f(tg.tensor(X), tg.tensor(Y))
    np.testing.assert_array_equal(other.grad.numpy(), [2, 2, 2])


def test_returned_loss_has_history_and_a_second_backward_raises_as_eager():
    model = _model(tg)

    @tg.compile(fullgraph=True)
    def f(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    loss = f(tg.tensor(X), tg.tensor(Y))
    assert loss.requires_grad and loss.grad_fn is not None
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()


def test_unsupported_inside_raises_naming_the_line():
    model = _model(tg)

    @tg.compile(fullgraph=True)
    def nonscalar(x):
        model(x).backward()  # as eager: only a scalar has an implicit gradient
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        nonscalar(tg.tensor(X))

    @tg.compile(fullgraph=True)
    def arg_grad(x):
        (x * 2).sum().backward()
    x = tg.tensor(X, requires_grad=True)
    with pytest.raises(GraphBreak, match=r"reaching the .grad of a tensor argument .*at "
                                         r"test_whole_step.py:\d+"):
        arg_grad(x)
    assert x.grad is None and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("opt_name", ["sgd_nesterov_wd", "adam_amsgrad_wd"])
def test_compiled_steps_equal_torch(opt_name):
    torch = pytest.importorskip("torch")
    _, _, l_c, _, _ = _run(opt_name, True, 30)
    model = _model(torch)
    opt = OPTS[opt_name](torch, model.parameters())
    x, y = torch.tensor(X), torch.tensor(Y)
    l_t = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        l_t.append(float(loss.detach()))
    np.testing.assert_allclose(l_c, l_t, rtol=1e-5, atol=1e-6)


def test_adamw_with_clipping_and_a_scheduler_equals_eager():
    def run(compiled):
        model = _model(tg)
        opt = tg.optim.AdamW(model.parameters(), lr=2e-2, weight_decay=0.05)
        sched = tg.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            opt.step()
            return loss.detach(), norm
        s = tg.compile(step, fullgraph=True) if compiled else step
        out = []
        for _ in range(30):
            loss, norm = s(tg.tensor(X), tg.tensor(Y))
            out.append((float(loss), float(norm)))
            sched.step()  # the lr changes every 5 calls: read by the program at each call
        return model, opt, out, s
    (m_e, o_e, out_e, _), (m_c, o_c, out_c, s) = run(False), run(True)
    _close(out_c, out_e)
    for p, q in zip(m_c.parameters(), m_e.parameters()):
        _close(p.detach().numpy(), q.detach().numpy())
        _close(p.grad.numpy(), q.grad.numpy())
    _assert_same_state(o_e, o_c)
    assert s.stats["traces"] == 2 and s.stats["hits"] == 28


def test_an_optimizer_not_yet_compiled_is_a_graph_break():
    model = _model(tg)
    opt = tg.optim.RMSprop(model.parameters(), lr=1e-2)

    @tg.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    with pytest.raises(GraphBreak, match=r"RMSprop.step\(\) inside a compiled function .*"
                                         r"test_whole_step.py:\d+: opt.step\(\)"):
        step(tg.tensor(X), tg.tensor(Y))
    assert all(p.grad is None for p in model.parameters()) and not opt.state
