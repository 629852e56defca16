"""A compiled function may call ``.backward()``, ``optimizer.step()`` and ``zero_grad()``: the
whole training step is one program (tests/compiler/test_whole_step.py has the long runs). What
is still not compiled inside (``create_graph=True``, a step with a closure, assigning ``.grad`` /
``.data``) is a graph break naming the user's line: with fullgraph=False it runs eagerly (with a
warning), so its results are eager's exactly. No traced value ever reaches a ``.grad``, a
parameter or an optimizer's state. ``autograd.grad`` stays compiled."""
from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler import GraphBreak

X = np.random.RandomState(0).randn(8, 5).astype(np.float32)
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def _setup(lib, opt_name, W):
    """A 2-layer MLP with the weights W (numpy) and its optimizer, in tracegrad or torch."""
    model = lib.nn.Sequential(lib.nn.Linear(5, 6), lib.nn.Tanh(), lib.nn.Linear(6, 3))
    with lib.no_grad():
        for p, w in zip(model.parameters(), W):
            p.copy_(lib.tensor(w))
    opt = (lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd"
           else lib.optim.Adam(model.parameters(), lr=0.01))
    return model, opt


def _weights():
    rs = np.random.RandomState(1)
    return [rs.randn(6, 5).astype(np.float32) * 0.4, rs.randn(6).astype(np.float32) * 0.1,
            rs.randn(3, 6).astype(np.float32) * 0.4, rs.randn(3).astype(np.float32) * 0.1]


def _train(lib, opt_name, compile_, steps=3, detach=False):
    model, opt = _setup(lib, opt_name, _weights())
    Fn = lib.nn.functional

    def train_step(x, y):
        opt.zero_grad()
        loss = Fn.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach() if detach else loss

    step = tg.compile(train_step) if compile_ else train_step
    x, y = lib.tensor(X), lib.tensor(Y)
    losses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            losses.append(float(step(x, y)))
    params = [p.detach().numpy().copy() for p in model.parameters()]
    grads = [p.grad for p in model.parameters()]
    return losses, params, grads, [str(w.message) for w in caught], step


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("detach", [False, True])
def test_compiled_training_step_equals_eager(opt_name, detach):
    l_e, p_e, g_e, w_e, _ = _train(tg, opt_name, False, detach=detach)
    l_c, p_c, g_c, w_c, step = _train(tg, opt_name, True, detach=detach)
    assert w_e == [] and w_c == []
    np.testing.assert_allclose(l_c, l_e, rtol=1e-6, atol=1e-7)
    for a, b in zip(p_c, p_e):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for g, ge in zip(g_c, g_e):
        assert isinstance(g, tg.Tensor) and isinstance(g._data.value, jax.Array)
        np.testing.assert_allclose(g.numpy(), ge.numpy(), rtol=1e-5, atol=1e-7)
    # the first step makes the optimizer's state (eagerly); then one trace, compiled steps
    s = step.stats
    assert s["graph_breaks"] == 0 and s["eager_first_steps"] == 1 and s["traces"] == 2
    assert s["hits"] == 1


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_compiled_training_step_equals_torch(opt_name):
    torch = pytest.importorskip("torch")
    l_c, p_c, _, _, _ = _train(tg, opt_name, True)
    l_t, p_t, _, _, _ = _train(torch, opt_name, False)
    np.testing.assert_allclose(l_c, l_t, rtol=1e-5, atol=1e-6)
    for a, b in zip(p_c, p_t):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_step_loses_weight_with_sgd_by_hand():
    # no torch needed: the first SGD step (no momentum yet) is w - lr * dL/dw by jax.grad
    W = _weights()
    model, opt = _setup(tg, "sgd", W)

    @tg.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step(tg.tensor(X), tg.tensor(Y))

    def loss_j(w1, b1, w2, b2):
        h = jax.numpy.tanh(X @ w1.T + b1)
        logits = h @ w2.T + b2
        return -jax.numpy.mean(jax.nn.log_softmax(logits)[np.arange(8), Y])
    gs = jax.grad(loss_j, argnums=(0, 1, 2, 3))(*W)
    for p, w, g in zip(model.parameters(), W, gs):
        np.testing.assert_allclose(p.detach().numpy(), w - 0.1 * np.asarray(g), rtol=1e-5, atol=1e-6)


def test_fullgraph_names_the_backward_line_and_changes_nothing():
    # create_graph=True inside is not compiled: the error names the line, nothing changed
    model, opt = _setup(tg, "adam", _weights())
    x, y = tg.tensor(X), tg.tensor(Y)
    F.cross_entropy(model(x), y).backward()  # .grad set eagerly beforehand
    before = [(p.detach().numpy().copy(), p.grad.numpy().copy()) for p in model.parameters()]

    @tg.compile(fullgraph=True)
    def loss_and_backward(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward(create_graph=True)
        return loss

    with pytest.raises(GraphBreak, match=r"backward\(create_graph=True\) inside a compiled "
                                         r"function is not compiled into the program \(at "
                                         r"test_training_step.py:\d+: "
                                         r"loss.backward\(create_graph=True\)\)"):
        loss_and_backward(x, y)
    for p, (w, g) in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), w)
        assert isinstance(p.grad._data.value, jax.Array)
        np.testing.assert_array_equal(p.grad.numpy(), g)
    assert opt.state_dict()["state"] == {}
    # still usable: eager backward and step afterwards
    F.cross_entropy(model(x), y).backward()
    opt.step()


def test_fullgraph_names_a_step_with_a_closure_and_zero_grad_compiles():
    model, opt = _setup(tg, "sgd", _weights())
    x = tg.tensor(X)
    (model(x) ** 2).sum().backward()  # gradients from an eager backward
    w0 = [p.detach().numpy().copy() for p in model.parameters()]
    step_only = tg.compile(lambda: opt.step(lambda: (model(x) ** 2).sum()), fullgraph=True)
    with pytest.raises(GraphBreak, match=r"optimizer.step\(closure\) inside a compiled function"):
        step_only()
    for p, w in zip(model.parameters(), w0):
        np.testing.assert_array_equal(p.detach().numpy(), w)
        assert p.grad is not None
    assert opt.state_dict()["state"] == {}  # no momentum buffer made from traced values
    zero = tg.compile(lambda: opt.zero_grad(), fullgraph=True)
    zero()
    assert all(p.grad is None for p in model.parameters())
    assert zero.stats["traces"] == 1


def test_optimizer_step_alone_runs_eagerly_and_matches():
    def run(compile_):
        model, opt = _setup(tg, "adam", _weights())
        step = tg.compile(opt.step) if compile_ else opt.step
        x = tg.tensor(X)
        for _ in range(3):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step()
        return [p.detach().numpy() for p in model.parameters()], opt.state_dict()["state"]
    (pe, se), (pc, sc) = run(False), run(True)
    for a, b in zip(pc, pe):  # (one fused program: equal to float32 rounding)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for k in se:
        assert se[k]["step"] == sc[k]["step"] == 3
        np.testing.assert_allclose(sc[k]["exp_avg"].numpy(), se[k]["exp_avg"].numpy(),
                                   rtol=1e-6, atol=1e-8)


def test_zero_grad_inside_a_forward_runs_at_every_call():
    model, _ = _setup(tg, "sgd", _weights())
    x = tg.tensor(X)

    def f(x):
        model.zero_grad()
        return model(x).sum()
    cf = tg.compile(f)
    for _ in range(2):
        model(x).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cf(x)
        assert all(p.grad is None for p in model.parameters())


def test_assigning_grad_of_an_outside_tensor_is_a_graph_break():
    w = tg.ones(3, requires_grad=True)

    def f(x):
        w.grad = x * 2
        return x + 1
    with pytest.raises(GraphBreak, match=r"assigning .grad inside a compiled function .*\(at "
                                         r"test_training_step.py:\d+: w.grad = x \* 2\)"):
        tg.compile(f, fullgraph=True)(tg.ones(3))
    assert w.grad is None
    with pytest.warns(UserWarning, match="assigning .grad"):
        tg.compile(f)(tg.ones(3))
    assert w.grad.tolist() == [2.0, 2.0, 2.0] and isinstance(w.grad._data.value, jax.Array)


def test_assigning_grad_of_an_argument_is_a_graph_break():
    def f(x):
        x.grad = x * 2
        return x + 1
    x = tg.ones(3)
    with pytest.warns(UserWarning, match="assigning .grad inside a compiled function"):
        tg.compile(f)(x)
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_assigning_data_inside_is_a_graph_break():
    w = tg.ones(3)

    def f(x):
        w.data = x * 2
        return x + 1
    with pytest.raises(GraphBreak, match=r"assigning .data inside a compiled function"):
        tg.compile(f, fullgraph=True)(tg.ones(3))
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_random_draws_after_a_graph_break_are_eagers():
    def f(x):
        y = x * tg.rand(3)
        y.sum().backward()
        return y.detach()

    def run(compile_):
        tg.manual_seed(3)
        x = tg.ones(3, requires_grad=True)
        g = tg.compile(f) if compile_ else f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [g(x).tolist() for _ in range(2)], x.grad.tolist()
    assert run(True) == run(False)


def test_autograd_grad_inside_stays_compiled():
    # autograd.grad returns values and writes no .grad: it is part of the traced program
    w = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)

    @tg.compile(fullgraph=True)
    def f(x):
        loss = (x * w).tanh().sum()
        g, = tg.autograd.grad(loss, w)
        return w - 0.1 * g
    x = tg.tensor([1.0, 2.0, 3.0])
    out = f(x)
    exp = np.array([0.5, -1.0, 2.0]) - 0.1 * np.array([1.0, 2.0, 3.0]) * (
        1 - np.tanh(np.array([0.5, -2.0, 6.0])) ** 2)
    np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-6)
    assert w.grad is None and f.stats["graph_breaks"] == 0
