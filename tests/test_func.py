"""``tracegrad.func.grad / value_and_grad / vjp`` against ``jax.grad`` / ``jax.value_and_grad``
/ ``jax.vjp`` of the same math (float64), their argnums / has_aux conventions, errors, and
use as decorators."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad as tg
from tracegrad.func import grad, value_and_grad, vjp

A = np.array([0.5, -1.0, 2.0])
B = np.array([1.5, 0.25, -0.75])
TOL = {"rtol": 1e-13, "atol": 1e-15}


def f_tg(x, y):
    return (x.sin() * y + x * x).sum()


def f_jax(x, y):
    return jnp.sum(jnp.sin(x) * y + x * x)


def _t(a, **kw):
    return tg.tensor(a, dtype=tg.float64, **kw)


def _close(t, ref):
    np.testing.assert_allclose(t.numpy(), np.asarray(ref), **TOL)


def test_grad_argnums_int_matches_jax():
    x, y = _t(A), _t(B)
    _close(grad(f_tg)(x, y), jax.grad(f_jax)(A, B))
    _close(grad(f_tg, argnums=1)(x, y), jax.grad(f_jax, argnums=1)(A, B))
    _close(grad(f_tg, argnums=-1)(x, y), jax.grad(f_jax, argnums=1)(A, B))


def test_grad_argnums_tuple_matches_jax():
    x, y = _t(A), _t(B)
    got = grad(f_tg, argnums=(0, 1))(x, y)
    want = jax.grad(f_jax, argnums=(0, 1))(A, B)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        _close(g, w)
    (g1,) = grad(f_tg, argnums=(1,))(x, y)  # a 1-tuple stays a tuple, as in jax
    _close(g1, want[1])


def test_value_and_grad_matches_jax():
    x, y = _t(A), _t(B)
    v, g = value_and_grad(f_tg)(x, y)
    vj, gj = jax.value_and_grad(f_jax)(A, B)
    _close(v, vj)
    _close(g, gj)
    assert not v.requires_grad and not g.requires_grad
    v, (gx, gy) = value_and_grad(f_tg, argnums=(0, 1))(x, y)
    _, (jx, jy) = jax.value_and_grad(f_jax, argnums=(0, 1))(A, B)
    _close(gx, jx)
    _close(gy, jy)


def test_has_aux_matches_jax_and_aux_is_not_differentiated():
    def h_tg(x):
        return (x ** 3).sum(), {"mean": x.mean(), "n": 3}

    def h_jax(x):
        return jnp.sum(x ** 3), {"mean": jnp.mean(x), "n": 3}
    x = _t(A)
    g, aux = grad(h_tg, has_aux=True)(x)
    gj, auxj = jax.grad(h_jax, has_aux=True)(A)
    _close(g, gj)
    _close(aux["mean"], auxj["mean"])
    assert aux["n"] == 3
    assert not aux["mean"].requires_grad and aux["mean"].grad_fn is None

    (v, aux), g = value_and_grad(h_tg, has_aux=True)(x)
    (vj, auxj), gj = jax.value_and_grad(h_jax, has_aux=True)(A)
    _close(v, vj)
    _close(g, gj)
    _close(aux["mean"], auxj["mean"])
    assert aux["mean"].grad_fn is None


def test_inputs_and_their_grad_are_left_alone():
    x = _t(A, requires_grad=True)
    y = _t(B)
    g = grad(f_tg)(x, y)
    _close(g.detach(), jax.grad(f_jax)(A, B))
    assert x.grad is None and y.grad is None and not y.requires_grad and x.requires_grad
    # as torch.func: x requires grad, so the gradient is itself differentiable w.r.t. x
    assert g.requires_grad and g.grad_fn is not None
    assert not grad(f_tg)(x.detach(), y).requires_grad


def test_compiled_once_per_guard_set():
    g = grad(f_tg)
    for k in range(3):
        _close(g(_t(A + k), _t(B)), jax.grad(f_jax)(A + k, B))
    stats = g.compiled.stats
    assert stats["traces"] == 1 and stats["hits"] == 2


def test_value_and_grad_runs_one_joint_program_from_the_first_call():
    vg = value_and_grad(f_tg, argnums=(0, 1))
    for k in range(2):
        v, (gx, gy) = vg(_t(A + k), _t(B))
        jv, (jgx, jgy) = jax.value_and_grad(f_jax, argnums=(0, 1))(A + k, B)
        _close(v, jv)
        _close(gx, jgx)
        _close(gy, jgy)
    entry = vg.compiled._last
    assert vg.compiled.stats["joint_calls"] == 2
    assert not entry.compiled and entry.joint is not None  # the forward alone never compiled


def test_vjp_matches_jax():
    def p_tg(x, y):
        return x * y.exp(), (x - y).sum()

    def p_jax(x, y):
        return x * jnp.exp(y), jnp.sum(x - y)
    x, y = _t(A), _t(B)
    out, vjp_fn = vjp(p_tg, x, y)
    outj, vjp_j = jax.vjp(p_jax, A, B)
    _close(out[0], outj[0])
    _close(out[1], outj[1])
    assert not out[0].requires_grad
    ct = (np.array([1.0, -2.0, 0.5]), np.array(3.0))
    gx, gy = vjp_fn((_t(ct[0]), _t(ct[1])))
    jx, jy = vjp_j(ct)
    _close(gx, jx)
    _close(gy, jy)
    gx2, gy2 = vjp_fn(_t(ct[0]), _t(ct[1]))  # cotangents as separate arguments; reusable
    _close(gx2, jx)
    _close(gy2, jy)


def test_vjp_single_output_and_has_aux():
    x = _t(A)
    out, vjp_fn, aux = vjp(lambda x: (x.tanh(), x.sum()), x, has_aux=True)
    outj, vjp_j, auxj = jax.vjp(lambda x: (jnp.tanh(x), jnp.sum(x)), A, has_aux=True)
    _close(out, outj)
    _close(aux, auxj)
    assert aux.grad_fn is None
    ct = np.array([0.5, 1.0, -1.0])
    (g,) = vjp_fn(_t(ct))
    _close(g, vjp_j(ct)[0])
    with pytest.raises(RuntimeError, match="expected 1 cotangents"):
        vjp_fn(_t(ct), _t(ct))


def test_non_scalar_output_is_an_error():
    x = _t(A)
    for transform in (grad, value_and_grad):
        with pytest.raises(RuntimeError, match=r"Expected f\(\*args\) to return a scalar Tensor, "
                                               r"got tensor with 1 dims"):
            transform(lambda x: x * 2)(x)
    with pytest.raises(RuntimeError, match=r"Expected f\(\*args\) to return a Tensor, got "
                                           r"<class 'float'>"):
        grad(lambda x: 3.0)(x)


def test_argument_errors():
    x, y = _t(A), _t(B)
    with pytest.raises(RuntimeError, match="Got argnums=2, but only 2 positional inputs"):
        grad(f_tg, argnums=2)(x, y)
    with pytest.raises(RuntimeError, match="only floating point tensors can be differentiated"):
        grad(lambda n: n.sum())(tg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="must be a Tensor"):
        grad(lambda a, b: (a * b).sum(), argnums=1)(x, 2.0)
    with pytest.raises(RuntimeError, match=r"must return a \(output, aux\) tuple"):
        grad(lambda x: x.sum(), has_aux=True)(x)
    assert repr(grad(lambda x: (x * x).sum())(_t([1.0]))) == (
        "tensor([2.], dtype=tracegrad.float64)")  # the transform still works after errors


def test_used_as_decorators():
    @grad
    def g(x, y):
        return f_tg(x, y)

    @value_and_grad
    def vg(x, y):
        return f_tg(x, y)

    x, y = _t(A), _t(B)
    _close(g(x, y), jax.grad(f_jax)(A, B))
    v, gv = vg(x, y)
    _close(v, f_jax(A, B))
    _close(gv, jax.grad(f_jax)(A, B))
    assert g.__name__ == "g" and vg.__name__ == "vg"


def test_grad_of_a_function_that_ignores_its_argument_is_zero():
    x, y = _t(A), _t(B)
    gx, gy = grad(lambda x, y: (y * y).sum(), argnums=(0, 1))(x, y)
    assert repr(gx) == "tensor([0., 0., 0.], dtype=tracegrad.float64)"  # materialized, no graph
    _close(gy, 2 * B)
    g = grad(lambda x, y: y.sum())(x, y)  # no output depends on any input that requires grad
    assert repr(g) == "tensor([0., 0., 0.], dtype=tracegrad.float64)"
    gx, gy = vjp(lambda x, y: y * 2, x, y)[1](_t(B))
    assert repr(gx) == "tensor([0., 0., 0.], dtype=tracegrad.float64)"


def test_grad_inside_a_compiled_training_step():
    """First-order func.grad used inside tg.compile: the traced step matches jax."""
    def loss(w, x):
        return ((x @ w).tanh() ** 2).mean()

    step = tg.compile(lambda w, x: w - 0.1 * grad(loss)(w, x))
    W = np.array([0.3, -0.2, 0.1])
    X = np.arange(6.0).reshape(2, 3) / 6

    def loss_j(w):
        return jnp.mean(jnp.tanh(X @ w) ** 2)
    _close(step(_t(W), _t(X)), W - 0.1 * jax.grad(loss_j)(W))


def test_nested_grad_matches_jax():
    x = _t(A)
    gg = grad(lambda x: grad(lambda z: (z ** 3).sum())(x).sum())(x)
    _close(gg, jax.grad(lambda x: jnp.sum(jax.grad(lambda z: jnp.sum(z ** 3))(x)))(A))
