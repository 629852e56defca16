"""The joint forward+backward program: once a compiled call's scalar output has been
differentiated with the implicit gradient (``loss.backward()``), later calls run forward and
backward as one XLA program, and the backward hands out the ready gradients. Every way the
speculation can be wrong (another seed, no backward at all, create_graph, hooks on the
output, in-place changes) must still give eager's answer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad as tg


def _loss(x, w):
    return ((x @ w).tanh() * x.sum()).sum()


def _loss_jax(x, w):
    return (jnp.tanh(x @ w) * x.sum()).sum()


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)


def _warm(f, x, w, n=2):
    """Calls with loss.backward() until the entry runs the joint program."""
    for _ in range(n):
        f(x, w).backward()
        x.grad = w.grad = None


def _warmed(seed=0, n=2):
    """Leaves x, w and a compiled _loss whose entry runs the joint program."""
    hx, hw = _data(seed)
    x, w = tg.tensor(hx, requires_grad=True), tg.tensor(hw, requires_grad=True)
    f = tg.compile(_loss)
    _warm(f, x, w, n)
    return hx, hw, x, w, f


def test_second_call_runs_the_joint_program_and_agrees_with_jax_grad():
    hx, hw = _data()
    x, w = tg.tensor(hx, requires_grad=True), tg.tensor(hw, requires_grad=True)
    f = tg.compile(_loss)
    losses = []
    for i in range(3):
        loss = f(x, w)
        losses.append(loss.item())
        loss.backward()
        if i < 2:
            gx, gw = x.grad, w.grad
            x.grad = w.grad = None
    assert f.stats["joint_calls"] == 2 and f.stats["traces"] == 1
    val, (jgx, jgw) = jax.value_and_grad(_loss_jax, argnums=(0, 1))(hx, hw)
    np.testing.assert_allclose(losses, [float(val)] * 3, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), jgx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), jgw, rtol=1e-5, atol=1e-6)
    # the split program (call 1) and the joint one (call 3) agree
    np.testing.assert_allclose(x.grad.numpy(), gx.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(w.grad.numpy(), gw.numpy(), rtol=1e-6, atol=1e-7)


def test_joint_outputs_keep_the_dynamic_graph_facts():
    hx, hw, x, w, f = _warmed()
    loss = f(x, w)
    assert loss.requires_grad and not loss.is_leaf
    assert loss.grad_fn.name() == "CompiledFunctionBackward"
    assert [n.variable for n, _ in loss.grad_fn.next_functions] == [x, w]


def test_another_seed_recomputes_and_matches_eager():
    hx, hw, x, w, f = _warmed(1)
    (f(x, w) * 3.5).backward()                      # seed 3.5 reaches the compiled node
    xe, we = tg.tensor(hx, requires_grad=True), tg.tensor(hw, requires_grad=True)
    (_loss(xe, we) * 3.5).backward()
    np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), we.grad.numpy(), rtol=1e-5, atol=1e-6)
    # an explicit gradient equal to one is not the implicit seed either: still correct
    x.grad = w.grad = None
    f(x, w).backward(tg.tensor(2.0))
    np.testing.assert_allclose(w.grad.numpy(), we.grad.numpy() / 3.5 * 2, rtol=1e-5, atol=1e-6)


def test_hook_on_the_output_changes_the_gradient():
    hx, hw, x, w, f = _warmed(2)
    loss = f(x, w)
    loss.register_hook(lambda g: g * 0)
    loss.backward()
    assert np.all(w.grad.numpy() == 0) and np.all(x.grad.numpy() == 0)


def test_unused_joint_results_switch_it_off_and_a_backward_switches_it_on():
    hx, hw, x, w, f = _warmed(0, n=3)
    entry = f._last
    assert entry.joint_on
    for _ in range(3):
        f(x, w)  # dropped: the gradients it computed are wasted
    assert not entry.joint_on
    n = f.stats["joint_calls"]
    f(x, w).backward()          # split program again; this backward turns the joint on
    assert f.stats["joint_calls"] == n and entry.joint_on
    x.grad = w.grad = None
    f(x, w).backward()
    assert f.stats["joint_calls"] == n + 1


def test_retain_graph_accumulates_and_the_freed_graph_raises():
    hx, hw, x, w, f = _warmed()
    loss = f(x, w)
    loss.backward(retain_graph=True)
    g1 = w.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * g1, rtol=1e-6)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()


def test_autograd_grad_of_a_subset_and_gradient_into_the_eager_graph():
    hx, hw = _data(3)
    a = tg.tensor(hx, requires_grad=True)
    w = tg.tensor(hw, requires_grad=True)
    f = tg.compile(_loss)
    for _ in range(3):
        x = a * 2.0                                   # eager history upstream of the input
        (gw,) = tg.autograd.grad(f(x, w), [w], retain_graph=True)
        loss = f(x, w)
        loss.backward()
    assert f.stats["joint_calls"] >= 1
    _, (jgx, jgw) = jax.value_and_grad(_loss_jax, argnums=(0, 1))(2 * hx, hw)
    np.testing.assert_allclose(gw.numpy(), jgw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), 3 * 2 * np.asarray(jgx), rtol=1e-5, atol=1e-5)


def test_create_graph_through_a_joint_call_is_exact():
    x = tg.tensor([0.3, -1.2, 2.0], requires_grad=True)
    f = tg.compile(lambda x: (x ** 3).sum())
    for _ in range(2):
        f(x).backward()
    x.grad = None
    (g,) = tg.autograd.grad(f(x), x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy(), rtol=1e-6)


def test_in_place_change_of_an_input_before_backward_raises():
    hx, hw = _data()
    w = tg.tensor(hw, requires_grad=True)
    f = tg.compile(_loss)
    x2 = tg.tensor(hx)  # an input that does not require grad, changed in place below
    for _ in range(2):
        f(x2, w).backward()
    assert f._last.joint_on
    loss = f(x2, w)
    x2.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_when_there_is_no_joint_form():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    vec = tg.compile(lambda x: x * 2)            # not a scalar: no implicit gradient

    def hooked(x):
        y = x * 3
        y.register_hook(lambda g: g * 2)         # a host callback inside the backward
        return y.sum()
    hk = tg.compile(hooked)
    for _ in range(3):
        vec(x).backward(tg.ones(2))
        hk(x).backward()
    assert vec.stats["joint_calls"] == 0 and hk.stats["joint_calls"] == 0
    np.testing.assert_allclose(x.grad.numpy(), 3 * (2 + 6))
    with pytest.raises(RuntimeError, match="no joint form"):
        vec.source("joint")


def test_joint_source_reads_as_forward_then_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    f = tg.compile(lambda x: (x * x).sum())
    f(x).backward()
    src = f.source("joint")
    compile(src, "<joint>", "exec")
    body = [ln.strip() for ln in src.splitlines() if not ln.startswith("#")]
    assert body[0] == "def joint(x):"
    assert body[1].startswith("f = forward(x)")
    assert body[2].startswith("return f[:1], backward(") and "ones((), 'float32')" in body[2]
