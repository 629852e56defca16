"""Runtime semantics of compiled calls: how ``CompiledFunctionBackward`` joins the eager
graph (retain_graph, freeing, upstream and downstream eager ops, reuse in one graph, aliasing
arguments, create_graph), what the outputs are (requires_grad, integers, inputs returned
as-is, pytrees), hooks in the backward program, and compiled modules."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler import CompiledFunctionBackward


def _x(*vals, rg=True):
    return tg.tensor(list(vals), dtype=tg.float64, requires_grad=rg)


def _np(t):
    return t.detach().numpy()


def sin_x(x):
    return (x.sin() * x).sum()


sin_x_c = tg.compile(sin_x)


# ----------------------------------------------------------------------------- retain_graph
def test_second_backward_without_retain_graph_raises_pytorch_error():
    x = _x(0.5, 1.0)
    y = sin_x_c(x)
    y.backward()
    g = _np(x.grad)
    with pytest.raises(RuntimeError, match=r"Trying to backward through the graph a second time "
                                           r"\(or directly access saved tensors after they have "
                                           r"already been freed\)"):
        y.backward()
    np.testing.assert_array_equal(_np(x.grad), g)  # unchanged by the failed call
    sin_x_c(x).backward()  # a new call builds a new graph
    np.testing.assert_allclose(_np(x.grad), 2 * g, rtol=1e-15)


def test_retain_graph_twice_accumulates():
    x = _x(0.5, 1.0)
    y = sin_x_c(x)
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    want = 3 * (np.sin([0.5, 1.0]) + np.array([0.5, 1.0]) * np.cos([0.5, 1.0]))
    np.testing.assert_allclose(_np(x.grad), want, rtol=1e-14)


def test_inputs_modified_in_place_after_the_call_are_detected():
    x = _x(0.5, 1.0)
    w = tg.tensor([1., 2.], dtype=tg.float64)
    y = tg.compile(lambda x, w: (x * w).sum())(x, w)
    with tg.no_grad():
        w.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


# ----------------------------------------------------------------------------- eager graph around
def test_gradient_flows_into_the_eager_graph_upstream_and_downstream():
    leaf = _x(1.0, 2.0)
    f = tg.compile(lambda t: t.exp())
    x = leaf * 2  # eager
    y = f(x)  # compiled, input is a non-leaf
    z = y * 3  # eager
    assert x.grad_fn.name() == "MulBackward0" and isinstance(y.grad_fn, CompiledFunctionBackward)
    assert y.grad_fn.next_functions[0][0] is x.grad_fn
    z.sum().backward()
    np.testing.assert_allclose(_np(leaf.grad), 6 * np.exp([2.0, 4.0]), rtol=1e-14)


def test_compiled_twice_in_one_graph():
    leaf = _x(0.5, 1.0)
    f = tg.compile(lambda t: t.sin() * 2)
    y = f(f(leaf))
    y.sum().backward()
    a = np.array([0.5, 1.0])
    want = 2 * np.cos(2 * np.sin(a)) * 2 * np.cos(a)
    np.testing.assert_allclose(_np(leaf.grad), want, rtol=1e-14)
    assert f.stats["traces"] == 2  # leaf input, then a non-leaf input: the leaf flag is guarded
    leaf.grad = None
    f(f(leaf)).sum().backward()
    assert f.stats["traces"] == 2 and f.stats["hits"] == 2
    np.testing.assert_allclose(_np(leaf.grad), want, rtol=1e-14)


def test_same_tensor_passed_twice():
    f = tg.compile(lambda a, b: (a * b.sin()).sum())
    x = _x(0.5, 1.0)
    f(x, x).backward()
    a = np.array([0.5, 1.0])
    np.testing.assert_allclose(_np(x.grad), np.sin(a) + a * np.cos(a), rtol=1e-14)


def test_nested_compiled_function_is_inlined():
    inner = tg.compile(lambda x: x.sin())
    outer = tg.compile(lambda x: inner(x) * 2)
    x = _x(0.5, 1.0)
    y = outer(x)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.cos([0.5, 1.0]), rtol=1e-14)
    assert "sin(" in outer.source() and inner.stats["calls"] == 0


# ----------------------------------------------------------------------------- higher order
def test_create_graph_second_derivatives_match_eager_and_jax_hessian():
    a = np.array([0.5, 1.0, 2.0])
    x = tg.tensor(a, requires_grad=True)
    (g,) = tg.autograd.grad(sin_x_c(x), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    H = np.stack([_np(tg.autograd.grad(g[i], x, retain_graph=True)[0]) for i in range(3)])

    xe = tg.tensor(a, requires_grad=True)
    (ge,) = tg.autograd.grad(sin_x(xe), xe, create_graph=True)
    He = np.stack([_np(tg.autograd.grad(ge[i], xe, retain_graph=True)[0]) for i in range(3)])
    Hj = np.asarray(jax.hessian(lambda v: jnp.sum(jnp.sin(v) * v))(jnp.asarray(a)))
    np.testing.assert_allclose(_np(g), _np(ge), rtol=1e-14)
    np.testing.assert_allclose(H, He, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(H, Hj, rtol=1e-12, atol=1e-15)


def test_create_graph_backward_into_grad_then_double_backward():
    x = _x(0.5, 1.5)
    f = tg.compile(lambda x: (x ** 3).sum())
    y = f(x)
    y.backward(create_graph=True)
    gx = x.grad  # 3x^2, with a graph
    assert gx.requires_grad
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 9.0], rtol=1e-14)  # 6x


def test_autograd_grad_of_compiled_outputs_leaves_grad_alone():
    x, w = _x(1.0, 2.0), _x(3.0, 4.0)
    f = tg.compile(lambda x, w: ((x * w).sum(), (x + w).exp()))
    s, e = f(x, w)
    gx, gw = tg.autograd.grad([s, e], [x, w], [tg.tensor(1.0, dtype=tg.float64),
                                                tg.ones(2, dtype=tg.float64)], retain_graph=True)
    np.testing.assert_allclose(_np(gx), [3, 4] + np.exp([4.0, 6.0]), rtol=1e-14)
    np.testing.assert_allclose(_np(gw), [1, 2] + np.exp([4.0, 6.0]), rtol=1e-14)
    assert x.grad is None and w.grad is None
    # only one output gets a gradient: the other's slot is zero in the program
    (gx,) = tg.autograd.grad(e.sum(), x)
    np.testing.assert_allclose(_np(gx), np.exp([4.0, 6.0]), rtol=1e-14)


def test_allow_unused_for_an_input_no_output_depends_on():
    f = tg.compile(lambda x, y: x * 2)
    x, y = _x(1.0), _x(2.0)
    out = f(x, y)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        tg.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = tg.autograd.grad(out, [x, y], allow_unused=True)
    assert repr(gx) == "tensor([2.], dtype=tracegrad.float64)" and gy is None


# ----------------------------------------------------------------------------- outputs
def test_outputs_that_do_not_depend_on_grad_inputs_do_not_require_grad():
    w = tg.ones(2, dtype=tg.float64)
    f = tg.compile(lambda x, c: (x * c, c * 2, w + 1, x.detach() * 2))
    x, c = _x(1.0, 2.0), tg.tensor([1., 1.], dtype=tg.float64)
    a, b, d, e = f(x, c)
    assert a.requires_grad and not a.is_leaf
    for t in (b, d, e):
        assert not t.requires_grad and t.grad_fn is None and t.is_leaf


def test_integer_and_bool_outputs():
    f = tg.compile(lambda x: (x.argmax(), x * 2, x > 1, x.detach().long()))
    x = _x(1.0, 3.0, 2.0)
    i, y, m, n = f(x)
    assert repr(i) == "tensor(1)" and i.dtype is tg.int64 and not i.requires_grad
    assert repr(m) == "tensor([False,  True,  True])" and not m.requires_grad
    assert repr(n) == "tensor([1, 3, 2])" and not n.requires_grad
    assert y.requires_grad
    y.sum().backward()
    assert repr(x.grad) == "tensor([2., 2., 2.], dtype=tracegrad.float64)"


def test_an_input_returned_as_is_is_the_same_object():
    f = tg.compile(lambda x, y: (x, y * 2, y, 3, "s", None))
    x, y = _x(1.0, 2.0), tg.ones(2)
    for _ in range(2):
        out = f(x, y)
        assert out[0] is x and out[2] is y and out[3:] == (3, "s", None)
        assert repr(out[1]) == "tensor([2., 2.])"


def test_a_captured_tensor_returned_as_is_is_the_same_object():
    w = tg.ones(2)
    out = tg.compile(lambda x: (x * 2, w))(tg.ones(2))
    assert out[1] is w


def test_pytrees_of_outputs():
    f = tg.compile(lambda x: {"y": x * 2, "z": (x.sum(), [x.exp()])})
    x = _x(0.0, 1.0)
    out = f(x)
    assert set(out) == {"y", "z"} and isinstance(out["z"], tuple) and isinstance(out["z"][1], list)
    assert repr(out["y"]) == ("tensor([0., 2.], dtype=tracegrad.float64, "
                              "grad_fn=<CompiledFunctionBackward>)")
    assert out["y"].grad_fn is out["z"][0].grad_fn is out["z"][1][0].grad_fn
    out["z"][1][0].sum().backward(retain_graph=True)  # one output of three gets a gradient
    np.testing.assert_allclose(_np(x.grad), np.exp([0.0, 1.0]), rtol=1e-15)
    (out["y"].sum() + out["z"][0]).backward()
    np.testing.assert_allclose(_np(x.grad), np.exp([0.0, 1.0]) + 3, rtol=1e-15)


def test_output_numbers_and_next_functions():
    f = tg.compile(lambda x, y: (x * y, x + y))
    x, y = _x(1.0), _x(2.0)
    p, s = f(x, y)
    assert p.grad_fn is s.grad_fn and (p._output_nr, s._output_nr) == (0, 1)
    assert p.grad_fn.name() == "CompiledFunctionBackward"
    nf = p.grad_fn.next_functions
    assert [type(n).__name__ for n, _ in nf] == ["AccumulateGrad", "AccumulateGrad"]
    assert nf[0][0].variable is x and nf[1][0].variable is y


def test_eager_fallback_outputs_are_eager():
    f = tg.compile(lambda x: x * 2 if x.sum() > 0 else x)
    x = _x(1.0)
    with pytest.warns(UserWarning, match="eagerly"):
        y = f(x)
    assert y.grad_fn.name() == "MulBackward0"


# ----------------------------------------------------------------------------- hooks at runtime
def test_hook_inside_sees_gradient_of_each_call():
    seen = []

    def f(x):
        y = x * x
        y.register_hook(lambda g: seen.append(_np(g)))
        return y * 3
    cf = tg.compile(f)
    x = _x(1.0, 2.0)
    cf(x).backward(tg.tensor([1.0, 2.0], dtype=tg.float64))
    cf(x).backward(tg.tensor([5.0, 7.0], dtype=tg.float64))
    assert [s.tolist() for s in seen] == [[3.0, 6.0], [15.0, 21.0]]


def test_hook_changing_shape_is_an_error():
    def f(x):
        y = x * 2
        y.register_hook(lambda g: g.sum())
        return y
    out = tg.compile(f)(_x(1.0, 2.0))
    with pytest.raises(Exception, match="hook"):
        out.sum().backward()


def _hook_x10_on_input(x):
    x.register_hook(lambda g: g * 10)
    return x * 2


def test_hook_on_a_leaf_input_inside_compiled_registers_per_call_as_eager():
    # as in eager, each call of the function registers one more hook on the caller's x
    f = tg.compile(_hook_x10_on_input)
    x, xe = _x(1.0, 2.0), _x(1.0, 2.0)
    f(x).sum().backward()
    _hook_x10_on_input(xe).sum().backward()
    assert repr(x.grad) == repr(xe.grad) == "tensor([20., 20.], dtype=tracegrad.float64)"
    f(x).sum().backward()
    _hook_x10_on_input(xe).sum().backward()
    assert repr(x.grad) == repr(xe.grad) == "tensor([220., 220.], dtype=tracegrad.float64)"


def test_hook_on_a_non_leaf_input_inside_compiled_runs_once():
    f = tg.compile(_hook_x10_on_input)
    leaf = _x(1.0, 2.0)
    f(leaf * 1).sum().backward()
    assert repr(leaf.grad) == "tensor([20., 20.], dtype=tracegrad.float64)"


def test_retain_grad_on_a_non_leaf_input_inside_compiled():
    def f(x):
        x.retain_grad()
        return x * 3
    leaf = _x(1.0, 2.0)
    x = leaf * 2
    tg.compile(f)(x).sum().backward()
    assert x.retains_grad
    assert repr(x.grad) == "tensor([3., 3.], dtype=tracegrad.float64)"


# ----------------------------------------------------------------------------- in-place inside
def test_in_place_on_an_argument_inside_compiled_is_written_back():
    def f(x):
        x.add_(1)
        return x * 2
    x = tg.tensor([1., 2.])
    out = tg.compile(f)(x)
    assert repr(out) == "tensor([4., 6.])"
    assert repr(x) == "tensor([2., 3.])"


def test_in_place_on_a_captured_tensor_inside_compiled():
    total = tg.zeros(2)

    def f(x):
        total.add_(x)
        return x * 2
    try:
        tg.compile(f)(tg.tensor([1., 2.]))
    except TypeError:
        pass
    import jax as _jax
    assert isinstance(total._data.value, _jax.Array), "the captured tensor was corrupted"
    assert repr(total) == "tensor([1., 2.])"


# ----------------------------------------------------------------------------- nn.Module
def test_compiled_module_sees_optimizer_steps():
    nn = pytest.importorskip("tracegrad.nn")
    optim = pytest.importorskip("tracegrad.optim")
    if not hasattr(nn, "Linear") or not hasattr(optim, "SGD"):
        pytest.skip("tracegrad.nn.Linear / tracegrad.optim.SGD are not there yet")
    tg.manual_seed(0)
    model = nn.Linear(3, 2).double()
    cm = tg.compile(model)
    x = tg.randn(4, 3, dtype=tg.float64)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        out = cm(x)
        np.testing.assert_allclose(_np(out), _np(model(x)), rtol=1e-14)
        loss = (out ** 2).mean()
        loss.backward()
        gw = _np(model.weight.grad)
        model.zero_grad()
        (model(x) ** 2).mean().backward()  # eager gradient at the same weights
        np.testing.assert_allclose(gw, _np(model.weight.grad), rtol=1e-13)
        opt.step()
    assert cm.stats["traces"] == 1 and cm.stats["hits"] == 2
    assert "addmm" in cm.source() or "matmul" in cm.source() or "linear" in cm.source()
