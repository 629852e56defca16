"""Reductions: sum, mean, amax/amin, max/min (with and without dim), var/std, softmax,
log_softmax, logsumexp, argmax/argmin."""
from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp

from .. import _dtype as D
from .._errors import SCALAR_TYPE_NAME
from .._tensor import Tensor
from ._registry import Op, Sample, apply, register
from .elementwise import abs as _abs, exp, maximum, minimum, pow as _pow, sqrt, where
from .shape import _dims, expand, reshape, unsqueeze

REDUCE_SAMPLES = [Sample((5,)), Sample((2, 3), dim=1), Sample((2, 3), dim=0, keepdim=True),
                  Sample((2, 3, 4), dim=(0, 2))]


def _norm_dims(dim, ndim):
    """``None``/``()`` -> None (all dims); int or sequence -> sorted tuple of non-negative dims."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return None
    if isinstance(dim, (tuple, list)):
        dims = tuple(sorted(_dims(d, ndim) for d in dim))
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"dim {dims} appears multiple times in the list of dims")
        return dims
    return (_dims(dim, ndim),)


def _unreduce(g, shape, dim, keepdim):
    """Bring a reduced gradient back to ``shape`` (reinsert reduced dims, then expand).
    A full reduction's 0-dim gradient expands directly: one op instead of two."""
    if not keepdim and len(shape) and dim is not None:
        kshape = list(shape)
        for d in dim:
            kshape[d] = 1
        g = reshape(g, tuple(kshape))
    return expand(g, shape)


def _count(shape, dim):
    return math.prod(shape) if dim is None else math.prod(shape[d] for d in dim)


def _reduction(name, impl, vjp, grad_names, samples=REDUCE_SAMPLES, **kw):
    op = register(Op(name, impl, vjp=vjp, samples=samples,
                     grad_name=lambda p, a: grad_names[p["dim"] is not None], **kw))
    return op


def _sum_impl(x, *, dim, keepdim, dtype):
    return jnp.sum(x, axis=dim, keepdims=keepdim, dtype=None if dtype is None else dtype.np)


_sum = _reduction("sum", _sum_impl,
                  lambda g, x, *, out, dim, keepdim, dtype: _unreduce(g, x.shape, dim, keepdim),
                  ("SumBackward0", "SumBackward1"))


def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over ``dim`` (all dims by default), as ``torch.sum``; ints and bools sum to int64."""
    if dtype is None and input.dtype.category != 2:
        dtype = D.int64
    return apply(_sum, input, dim=_norm_dims(dim, input.ndim), keepdim=keepdim,
                 dtype=None if dtype is None else D.as_dtype(dtype))


_sum.public = sum

_mean = _reduction("mean", lambda x, *, dim, keepdim: jnp.mean(x, axis=dim, keepdims=keepdim),
                   lambda g, x, *, out, dim, keepdim:
                       _unreduce(g, x.shape, dim, keepdim) / _count(x.shape, dim),
                   ("MeanBackward0", "MeanBackward1"))


def mean(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.category != 2:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {_cpp_name(input.dtype)}")
    return apply(_mean, input, dim=_norm_dims(dim, input.ndim), keepdim=keepdim)


_mean.public = mean


def _cpp_name(dtype):
    return SCALAR_TYPE_NAME[dtype.name]


def _evenly(g, x, out, dim, keepdim):
    # amax/amin and full max/min: ties share the gradient evenly, as PyTorch does
    mask = x == _unreduce(out, x.shape, dim, keepdim)
    return _unreduce(g, x.shape, dim, keepdim) * mask / sum(mask, dim, keepdim=True)


def _ext(name, fn, grad_names):
    op = _reduction(name, lambda x, *, dim, keepdim: fn(x, axis=dim, keepdims=keepdim),
                    lambda g, x, *, out, dim, keepdim: _evenly(g, x, out, dim, keepdim),
                    grad_names, twice_differentiable=False)

    def public(input, dim=(), keepdim=False):
        if input.numel() == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        return apply(op, input, dim=_norm_dims(dim, input.ndim), keepdim=keepdim)
    public.__name__ = name
    op.public = public
    return public


amax = _ext("amax", jnp.max, ("AmaxBackward0", "AmaxBackward0"))
amin = _ext("amin", jnp.min, ("AminBackward0", "AminBackward0"))
_max_all = _ext("max_all", jnp.max, ("MaxBackward1", "MaxBackward1"))
_min_all = _ext("min_all", jnp.min, ("MinBackward1", "MinBackward1"))

_onehot = register(Op("onehot_along",
                      lambda idx, *, size, dim: jnp.expand_dims(jnp.arange(size), tuple(
                          i for i in range(idx.ndim) if i != dim)) == idx))


def _select_grad(g, x, dim, keepdim, arg):
    idx = arg(x, dim, keepdim=True)
    gk = g if keepdim else unsqueeze(g, dim)
    return where(apply(_onehot, idx, size=x.shape[dim], dim=dim), gk, 0.0)


def _argext(name, fn):
    op = register(Op(name, lambda x, *, dim, keepdim: fn(x, axis=dim, keepdims=keepdim)))

    def public(input, dim=None, keepdim=False):
        if dim is None:
            return apply(op, reshape(input, -1), dim=0, keepdim=False)
        return apply(op, input, dim=_dims(dim, input.ndim), keepdim=keepdim)
    public.__name__ = name
    op.public = public
    return public


argmax = _argext("argmax", jnp.argmax)
argmin = _argext("argmin", jnp.argmin)

_max_dim = register(Op("max_dim", lambda x, *, dim, keepdim: jnp.max(x, axis=dim, keepdims=keepdim),
                       grad_name="MaxBackward0", twice_differentiable=False,
                       vjp=lambda g, x, *, out, dim, keepdim: _select_grad(g, x, dim, keepdim, argmax),
                       samples=[Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True)]))
_min_dim = register(Op("min_dim", lambda x, *, dim, keepdim: jnp.min(x, axis=dim, keepdims=keepdim),
                       grad_name="MinBackward0", twice_differentiable=False,
                       vjp=lambda g, x, *, out, dim, keepdim: _select_grad(g, x, dim, keepdim, argmin),
                       samples=[Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True)]))

return_types_max = collections.namedtuple("max", ["values", "indices"])
return_types_min = collections.namedtuple("min", ["values", "indices"])


def _max_min(all_fn, dim_op, arg, rtype, bin_fn):
    def public(input, dim=None, keepdim=False):
        if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
            return bin_fn(input, dim)
        if dim is None:
            return all_fn(input)
        d = _dims(dim, input.ndim)
        return rtype(apply(dim_op, input, dim=d, keepdim=keepdim), arg(input, d, keepdim))
    return public


max = _max_min(_max_all, _max_dim, argmax, return_types_max, maximum)  # noqa: A001
min = _max_min(_min_all, _min_dim, argmin, return_types_min, minimum)  # noqa: A001
max.__name__, min.__name__ = "max", "min"
_max_dim.public = lambda input, dim, keepdim=False: max(input, dim, keepdim).values
_min_dim.public = lambda input, dim, keepdim=False: min(input, dim, keepdim).values


def _var_impl(x, *, dim, correction, keepdim):
    return jnp.var(x, axis=dim, ddof=correction, keepdims=keepdim)


def _var_grad(g, x, dim, correction, keepdim):
    return (_unreduce(g, x.shape, dim, keepdim) * 2 * (x - mean(x, dim, keepdim=True))
            / (_count(x.shape, dim) - correction))


VAR_SAMPLES = [Sample((5,)), Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True, correction=0)]
_var = register(Op("var", _var_impl, grad_name="VarBackward0", samples=VAR_SAMPLES,
                   vjp=lambda g, x, *, out, dim, correction, keepdim: _var_grad(g, x, dim, correction, keepdim)))
_std = register(Op("std", lambda x, *, dim, correction, keepdim: jnp.sqrt(_var_impl(
                       x, dim=dim, correction=correction, keepdim=keepdim)),
                   grad_name="StdBackward0", samples=VAR_SAMPLES,
                   vjp=lambda g, x, *, out, dim, correction, keepdim: _var_grad(
                       g / (2 * out), x, dim, correction, keepdim)))


def _var_public(op):
    def public(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var(input, unbiased)
            dim, unbiased = None, dim
        if correction is None:
            correction = 1 if unbiased is None else int(bool(unbiased))
        return apply(op, input, dim=_norm_dims(dim, input.ndim), correction=correction, keepdim=keepdim)
    public.__name__ = op.name
    op.public = public
    return public


var = _var_public(_var)
std = _var_public(_std)

SOFTMAX_SAMPLES = [Sample((5,), dim=0), Sample((2, 3), dim=1), Sample((2, 3, 2), dim=-2)]
_softmax = register(Op(
    "softmax", lambda x, *, dim: jax.nn.softmax(x, axis=dim), promote="float", samples=SOFTMAX_SAMPLES,
    vjp=lambda g, x, *, out, dim: out * (g - sum(g * out, dim, keepdim=True))))
_log_softmax = register(Op(
    "log_softmax", lambda x, *, dim: jax.nn.log_softmax(x, axis=dim), promote="float",
    samples=SOFTMAX_SAMPLES,
    vjp=lambda g, x, *, out, dim: g - exp(out) * sum(g, dim, keepdim=True)))


def _softmax_public(op):
    def public(input, dim=None, dtype=None, **_):
        if dim is None:
            raise TypeError(f"{op.name}() missing required argument 'dim' (PyTorch's implicit "
                            "dim choice is deprecated; pass dim explicitly)")
        if dtype is not None:
            input = input.to(dtype)
        return apply(op, input, dim=_dims(dim, input.ndim))
    public.__name__ = op.name
    op.public = public
    return public


softmax = _softmax_public(_softmax)
log_softmax = _softmax_public(_log_softmax)

_logsumexp = register(Op(
    "logsumexp", lambda x, *, dim, keepdim: jax.nn.logsumexp(x, axis=dim, keepdims=keepdim),
    promote="float", samples=REDUCE_SAMPLES[1:],
    vjp=lambda g, x, *, out, dim, keepdim: _unreduce(g, x.shape, dim, keepdim) * exp(
        x - _unreduce(out, x.shape, dim, keepdim))))


def logsumexp(input, dim, keepdim=False):
    return apply(_logsumexp, input, dim=_norm_dims(dim, input.ndim), keepdim=keepdim)


_logsumexp.public = logsumexp


def prod_(shape):
    return math.prod(shape)


def norm(input, p="fro", dim=None, keepdim=False):
    """Vector 2-norm / Frobenius norm (p=2 or 'fro'), or p-norms for other numeric p."""
    if p in ("fro", 2, 2.0):
        return sqrt(sum(input * input, dim, keepdim))
    if p in (1, 1.0):
        return sum(_abs(input), dim, keepdim)
    if p == float("inf"):
        return amax(_abs(input), dim if dim is not None else (), keepdim)
    return _pow(sum(_pow(_abs(input), p), dim, keepdim), 1.0 / p)
