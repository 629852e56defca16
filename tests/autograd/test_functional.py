"""``tracegrad.autograd.functional``: vjp, jvp, jacobian, hessian, hvp, vhp against jax
(``jax.vjp``, ``jax.jvp``, ``jax.jacrev``, ``jax.hessian``) on the same math, Hessian-vector
products against finite differences of the gradient, PyTorch's output structure and errors,
and torch.autograd.functional as the oracle where installed."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad as tg
from tracegrad.autograd import functional as F

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _np(t):
    return np.asarray(t.detach()._data.value)


def _t(a, rg=False):
    return tg.tensor(np.asarray(a), dtype=tg.float64, requires_grad=rg)


RNG = np.random.default_rng(0)
X3 = RNG.uniform(-1, 1, 3)
Y3 = RNG.uniform(-1, 1, 3)
# a small MLP: 4 inputs -> 5 hidden (tanh) -> 1, squared-error loss against a fixed target
W1, B1 = RNG.standard_normal((4, 5)) * 0.5, RNG.standard_normal(5) * 0.1
W2 = RNG.standard_normal((5, 1)) * 0.5
XB, TARGET = RNG.standard_normal((6, 4)), RNG.standard_normal((6, 1))


def mlp_loss(lib, w1, b1, w2):
    """The same math for tracegrad tensors (lib=tg) and jax arrays (lib=jnp)."""
    xb, target = (_t(XB), _t(TARGET)) if lib is tg else (XB, TARGET)
    h = lib.tanh(xb @ w1 + b1)
    return ((h @ w2 - target) ** 2).mean()


# ----------------------------------------------------------------------------- second derivatives vs jax.hessian

@pytest.mark.parametrize("name,f_tg,f_jax,args", [
    ("x**3", lambda x: (x ** 3).sum(), lambda x: (x ** 3).sum(), (X3,)),
    ("sin(x)*exp(y)", lambda x, y: (tg.sin(x) * tg.exp(y)).sum(),
     lambda x, y: (jnp.sin(x) * jnp.exp(y)).sum(), (X3, Y3)),
    ("mlp loss", lambda w1, b1, w2: mlp_loss(tg, w1, b1, w2),
     lambda w1, b1, w2: mlp_loss(jnp, w1, b1, w2), (W1, B1, W2)),
])
def test_hessian_matches_jax(name, f_tg, f_jax, args):
    mine = F.hessian(f_tg, tuple(_t(a) for a in args))
    ref = jax.hessian(f_jax, argnums=tuple(range(len(args))))(*args)
    for i in range(len(args)):
        for j in range(len(args)):
            assert tuple(mine[i][j].shape) == args[i].shape + args[j].shape
            np.testing.assert_allclose(_np(mine[i][j]), np.asarray(ref[i][j]), **TOL,
                                       err_msg=f"{name}: d2/d{i}d{j}")


def test_hessian_of_a_single_tensor_is_a_tensor():
    h = F.hessian(lambda x: (x ** 3).sum(), _t(X3))
    assert isinstance(h, tg.Tensor)
    np.testing.assert_allclose(_np(h), np.diag(6 * X3), **TOL)


def _flat_mlp(theta_np_or_t, lib):
    sizes = [W1.size, B1.size, W2.size]
    parts, k = [], 0
    for s, shape in zip(sizes, [W1.shape, B1.shape, W2.shape]):
        parts.append(theta_np_or_t[k:k + s].reshape(shape))
        k += s
    return mlp_loss(lib, *parts)


THETA = np.concatenate([W1.ravel(), B1, W2.ravel()])


def _grad_np(theta):
    x = _t(theta, rg=True)
    g, = tg.autograd.grad(_flat_mlp(x, tg), x)
    return _np(g)


@pytest.mark.parametrize("fn", [F.hvp, F.vhp])
def test_hessian_vector_products_match_finite_differences(fn):
    v = np.random.default_rng(1).standard_normal(THETA.size)
    out, hv = fn(lambda th: _flat_mlp(th, tg), _t(THETA), _t(v))
    h = 1e-5
    fd = (_grad_np(THETA + h * v) - _grad_np(THETA - h * v)) / (2 * h)
    np.testing.assert_allclose(_np(hv), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(float(out), float(mlp_loss(jnp, W1, B1, W2)), rtol=1e-12)
    # and against the full Hessian (symmetric, so hvp == vhp)
    H = jax.hessian(lambda th: _flat_mlp(th, jnp))(THETA)
    np.testing.assert_allclose(_np(hv), np.asarray(H) @ v, **TOL)


# ----------------------------------------------------------------------------- first order vs jax

def _f2(lib):
    def f(x, y):
        return lib.sin(x) * y, (x * y).sum() if lib is tg else jnp.sum(x * y)
    return f


def test_vjp_jvp_jacobian_match_jax():
    x, y = _t(X3), _t(Y3)
    v_out = (_t(np.ones(3) * 0.5), _t(2.0))
    v_in = (_t([1., 0., -1.]), _t([0.5, 0.5, 0.5]))
    f_tg, f_jax = _f2(tg), _f2(jnp)

    out, vj = F.vjp(f_tg, (x, y), v_out)
    ref_out, pull = jax.vjp(f_jax, X3, Y3)
    ref_vj = pull((np.ones(3) * 0.5, 2.0))
    for a, b in zip(out, ref_out):
        np.testing.assert_allclose(_np(a), np.asarray(b), **TOL)
    for a, b in zip(vj, ref_vj):
        np.testing.assert_allclose(_np(a), np.asarray(b), **TOL)

    _, jv = F.jvp(f_tg, (x, y), v_in)
    _, ref_jv = jax.jvp(f_jax, (X3, Y3), (np.array([1., 0., -1.]), np.array([.5, .5, .5])))
    for a, b in zip(jv, ref_jv):
        np.testing.assert_allclose(_np(a), np.asarray(b), **TOL)

    jac = F.jacobian(f_tg, (x, y))
    ref_jac = jax.jacrev(f_jax, argnums=(0, 1))(X3, Y3)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(_np(jac[i][j]), np.asarray(ref_jac[i][j]), **TOL)
    assert tuple(jac[0][0].shape) == (3, 3) and tuple(jac[1][0].shape) == (3,)


def test_output_structure_follows_the_inputs():
    x = _t(X3)
    assert isinstance(F.jacobian(lambda a: a.exp(), x), tg.Tensor)
    j = F.jacobian(lambda a: (a.exp(), a.sum()), x)
    assert isinstance(j, tuple) and len(j) == 2 and isinstance(j[0], tg.Tensor)
    j = F.jacobian(lambda a, b: a * b, (x, _t(Y3)))
    assert isinstance(j, tuple) and len(j) == 2 and tuple(j[1].shape) == (3, 3)
    out, g = F.vjp(lambda a: a.sum(), x)  # v may be omitted for a one-element output
    assert isinstance(g, tg.Tensor) and g.tolist() == [1., 1., 1.]


def test_create_graph():
    x = _t(X3, rg=True)
    _, g = F.vjp(lambda a: (a ** 3).sum(), x, create_graph=True)
    assert g.requires_grad
    g2, = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(_np(g2), 6 * X3, **TOL)
    _, g = F.vjp(lambda a: (a ** 3).sum(), x)
    assert not g.requires_grad and g.grad_fn is None
    h = F.hessian(lambda a: (a ** 3).sum(), x, create_graph=True)
    assert h.requires_grad
    (third,) = tg.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(_np(third), np.full(3, 6.0), **TOL)


def test_functions_independent_of_an_input():
    x, y = _t(X3), _t(Y3)
    j = F.jacobian(lambda a, b: a * 2, (x, y))
    assert np.all(_np(j[1]) == 0)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent "
                                           "of input 1. This is not allowed in strict mode."):
        F.jacobian(lambda a, b: a * 2, (x, y), strict=True)
    with pytest.raises(RuntimeError, match="The output of the user-provided function is "
                                           "independent of input 1"):
        F.vjp(lambda a, b: (a * 2).sum(), (x, y), strict=True)
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with respect to "
                                           "input 0 is independent of the input"):
        F.hessian(lambda a: (a * 2).sum(), x, strict=True)
    np.testing.assert_allclose(_np(F.hessian(lambda a: (a * 2).sum(), x)), np.zeros((3, 3)))


def test_argument_errors():
    x = _t(X3)
    with pytest.raises(RuntimeError, match="The vector v can only be None if the user-provided "
                                           "function returns a single Tensor with a single element"):
        F.vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be tracegrad.Size\(\[3\]\) "
                                           r"but got tracegrad.Size\(\[2\]\)"):
        F.jvp(lambda a: a * 2, x, _t([1., 2.]))
    with pytest.raises(TypeError, match="The inputs given to hessian must be either a Tensor or a "
                                        "tuple of Tensors"):
        F.hessian(lambda a: a.sum(), [1.0, 2.0])
    with pytest.raises(RuntimeError, match="The Tensor returned by the function given to hvp should "
                                           "contain a single element"):
        F.hvp(lambda a: a * 2, x, x)
    with pytest.raises(NotImplementedError, match="only implemented for `vectorize=True`"):
        F.jacobian(lambda a: a * 2, x, strategy="forward-mode")


def test_vectorize_and_forward_strategy_give_the_same_values():
    x = _t(X3)
    ref = _np(F.jacobian(lambda a: a.sin() * a, x))
    np.testing.assert_array_equal(_np(F.jacobian(lambda a: a.sin() * a, x, vectorize=True)), ref)
    np.testing.assert_array_equal(_np(F.jacobian(lambda a: a.sin() * a, x, vectorize=True,
                                                 strategy="forward-mode")), ref)


def test_matches_torch_functional(torch_ref):
    torch = torch_ref
    results = {}
    for lib in (tg, torch):
        Fn = lib.autograd.functional

        def f(a, b):
            return (lib.sin(a) * b.exp()).sum()

        x = lib.tensor(X3, dtype=lib.float64)
        y = lib.tensor(Y3, dtype=lib.float64)
        v = (lib.tensor([1., 2., 3.], dtype=lib.float64), lib.tensor([0., 1., 0.], dtype=lib.float64))
        res = [Fn.hessian(f, (x, y)), Fn.hvp(f, (x, y), v)[1], Fn.vhp(f, (x, y), v)[1],
               Fn.jvp(lambda a: a.sin() * a, x, v[0])[1], Fn.vjp(lambda a: a.sin() * a, x, v[0])[1],
               Fn.jacobian(lambda a, b: (a * b, a.sum()), (x, y))]
        results[lib.__name__] = res

    def flat(r):
        if isinstance(r, tuple):
            return [z for el in r for z in flat(el)]
        return [np.asarray(r.detach().numpy())]

    mine, ref = flat(tuple(results["tracegrad"])), flat(tuple(results["torch"]))
    assert len(mine) == len(ref)
    for a, b in zip(mine, ref):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOL)
