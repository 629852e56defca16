"""Reductions: sum, mean, amax/amin, max/min (with and without dim), var/std, softmax,
log_softmax, logsumexp, argmax/argmin, norm (``linalg_vector_norm``).

Wherever a dim is taken, a 0-d tensor accepts dim 0 and -1 (PyTorch's rule): the op then
reduces over no dim at all, written ``dim=()`` in its params."""
from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp

from .. import _dtype as D
from .._errors import SCALAR_TYPE_NAME
from .._tensor import Tensor
from ._registry import Op, Sample, apply, register
from . import elementwise as _ew
from .elementwise import abs as _abs, exp, maximum, minimum, pow as _pow, sqrt, where
from .shape import _dims, expand, reshape, unsqueeze

__all__ = ["amax", "amin", "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "min",
           "norm", "softmax", "std", "sum", "var"]

REDUCE_SAMPLES = [Sample((5,)), Sample((2, 3), dim=1), Sample((2, 3), dim=0, keepdim=True),
                  Sample((2, 3, 4), dim=(0, 2)), Sample((), dim=0), Sample((), dim=-1, keepdim=True),
                  Sample((1, 3), dim=(0, -1))]


def _norm_dims(dim, ndim):
    """``None`` -> None (all dims); int or sequence -> sorted tuple of non-negative dims; an
    empty sequence names every dim (PyTorch's ``sum(x, ())``: all dims, ``SumBackward1``).
    A 0-d tensor takes dim 0 and -1, as in PyTorch: they reduce nothing, which is ``()``."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        if not dim:
            return tuple(range(ndim))
        dims = [_dims(d, ndim) for d in dim]
        seen = set()
        for d in dims:
            if d in seen:
                raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
            seen.add(d)
        return tuple(sorted(dims)) if ndim else ()
    d = _dims(dim, ndim)
    return (d,) if ndim else ()


def _one_dim(dim, ndim):
    """One dim (an int) for ops along a single dim; ``()`` for a 0-d tensor's dim 0 / -1."""
    d = _dims(dim, ndim)
    return d if ndim else ()


def _unreduce(g, shape, dim, keepdim):
    """Bring a reduced gradient back to ``shape`` (reinsert reduced dims, then expand).
    A full reduction's 0-dim gradient expands directly: one op instead of two."""
    if not keepdim and dim is not None and len(dim) < len(shape):
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
    if dtype is None and input.dtype.category != D.FLOATING:
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
    if input.dtype.category != D.FLOATING:
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


def _check_nonempty(name, input, dim, dims):
    """PyTorch's errors for a max/min-like reduction (no identity) over an empty dim."""
    if dim is None or dim == () or dim == []:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() "
                           "== 0. Specify the reduction dim with the 'dim' argument.")
    for d in (dims if isinstance(dims, tuple) else (dims,)):
        if input.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _ext(name, fn, grad_names):
    op = _reduction(name, lambda x, *, dim, keepdim: fn(x, axis=dim, keepdims=keepdim),
                    lambda g, x, *, out, dim, keepdim: _evenly(g, x, out, dim, keepdim),
                    grad_names, twice_differentiable=False, aten="aten::" + name.replace("_all", ""))

    shown = name.replace("_all", "")  # max_all is torch.max(input)

    def public(input, dim=(), keepdim=False):
        dims = _norm_dims(dim, input.ndim)
        if input.numel() == 0:
            _check_nonempty(shown, input, dim, dims)
        return apply(op, input, dim=dims, keepdim=keepdim)
    public.__name__ = name
    op.public = public
    return public


amax = _ext("amax", jnp.max, ("AmaxBackward0", "AmaxBackward0"))
amin = _ext("amin", jnp.min, ("AminBackward0", "AminBackward0"))
_max_all = _ext("max_all", jnp.max, ("MaxBackward1", "MaxBackward1"))
_min_all = _ext("min_all", jnp.min, ("MinBackward1", "MinBackward1"))

_onehot = register(Op("onehot_along",
                      lambda idx, *, size, dim: jnp.expand_dims(jnp.arange(size), tuple(
                          i for i in range(idx.ndim) if i != dim)) == idx,
                      aten="tg::onehot_along"))  # (no ATen op: a step of max's backward)


def _select_grad(g, x, dim, keepdim, arg):
    # max/min along a dim: the whole gradient goes to the selected (first) index, as PyTorch
    where = _ew.where
    if not x.ndim:  # a 0-d input is its own maximum (PyTorch scatters g into zeros: an op)
        return where(True, g, 0.0)
    idx = arg(x, dim, keepdim=True)
    gk = g if keepdim else unsqueeze(g, dim)
    return where(apply(_onehot, idx, size=x.shape[dim], dim=dim), gk, 0.0)


def _argext(name, fn):
    def impl(x, *, dim, keepdim):
        if dim == ():  # a 0-d input: its one element is index 0
            return jnp.zeros((), jnp.int64)
        return fn(x, axis=dim, keepdims=keepdim)
    op = register(Op(name, impl, samples=[Sample((2, 3), dim=1), Sample((), dim=0)]))

    def public(input, dim=None, keepdim=False):
        if input.numel() == 0:
            if dim is None:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 "input.numel() == 0.")
            _check_nonempty(name, input, dim, _one_dim(dim, input.ndim))
        if dim is None:
            out = apply(op, reshape(input, -1), dim=0, keepdim=False)
            return reshape(out, (1,) * input.ndim) if keepdim else out
        return apply(op, input, dim=_one_dim(dim, input.ndim), keepdim=keepdim)
    public.__name__ = name
    public.op = op
    op.public = public
    return public


argmax = _argext("argmax", jnp.argmax)
argmin = _argext("argmin", jnp.argmin)

_max_dim = register(Op("max_dim", aten="aten::max", impl=lambda x, *, dim, keepdim: jnp.max(x, axis=dim, keepdims=keepdim),
                       grad_name="MaxBackward0", twice_differentiable=False,
                       vjp=lambda g, x, *, out, dim, keepdim: _select_grad(g, x, dim, keepdim, argmax),
                       samples=[Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True),
                                Sample((), dim=-1)]))
_min_dim = register(Op("min_dim", aten="aten::min", impl=lambda x, *, dim, keepdim: jnp.min(x, axis=dim, keepdims=keepdim),
                       grad_name="MinBackward0", twice_differentiable=False,
                       vjp=lambda g, x, *, out, dim, keepdim: _select_grad(g, x, dim, keepdim, argmin),
                       samples=[Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True),
                                Sample((), dim=-1)]))

return_types_max = collections.namedtuple("max", ["values", "indices"])
return_types_min = collections.namedtuple("min", ["values", "indices"])


def _max_min(all_fn, dim_op, arg, rtype, bin_fn):
    def public(input, dim=None, keepdim=False):
        if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
            return bin_fn(input, dim)
        if dim is None:
            return all_fn(input)
        d = _one_dim(dim, input.ndim)
        if input.numel() == 0:
            _check_nonempty(public.__name__, input, dim, d)
        return rtype(apply(dim_op, input, dim=d, keepdim=keepdim),
                     apply(arg.op, input, dim=d, keepdim=keepdim))
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


VAR_SAMPLES = [Sample((5,)), Sample((2, 3), dim=1), Sample((3, 4), dim=0, keepdim=True, correction=0),
               Sample((), dim=0, correction=0), Sample((2, 3), dim=(0, 1), keepdim=True)]
_var = register(Op("var", _var_impl, grad_name="VarBackward0", samples=VAR_SAMPLES,
                   vjp=lambda g, x, *, out, dim, correction, keepdim: _var_grad(g, x, dim, correction, keepdim)))
_std = register(Op("std", lambda x, *, dim, correction, keepdim: jnp.sqrt(_var_impl(
                       x, dim=dim, correction=correction, keepdim=keepdim)),
                   grad_name="StdBackward0", samples=VAR_SAMPLES[:3] + VAR_SAMPLES[4:],  # (0-d: std 0, a kink)
                   vjp=lambda g, x, *, out, dim, correction, keepdim: _var_grad(
                       _std_g(g, out), x, dim, correction, keepdim)))


def _std_g(g, out):
    # PyTorch masks where the std is 0 (a constant slice): gradient 0, not 0/0
    return _ew.where(out == 0, 0.0, g / (2 * out))


def _var_public(op):
    def public(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var(input, unbiased)
            dim, unbiased = None, dim
        if input.dtype.category != 2:
            raise RuntimeError("std and var only support floating point and complex dtypes")
        if correction is None:
            correction = 1 if unbiased is None else int(bool(unbiased))
        return apply(op, input, dim=_norm_dims(dim, input.ndim), correction=correction, keepdim=keepdim)
    public.__name__ = op.name
    op.public = public
    return public


var = _var_public(_var)
std = _var_public(_std)

SOFTMAX_SAMPLES = [Sample((5,), dim=0), Sample((2, 3), dim=1), Sample((2, 3, 2), dim=-2),
                   Sample((), dim=-1)]
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
        d = _one_dim(dim, input.ndim)
        if input.dtype.category != 2:
            kernel = "lastdim_kernel_impl" if d == () or d == input.ndim - 1 else "kernel_impl"
            raise NotImplementedError(f"\"{op.name}_{kernel}\" not implemented for "
                                      f"'{_cpp_name(input.dtype)}'")
        return apply(op, input, dim=d)
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


exp = _ew.exp


def _norm_impl(x, *, ord, dim, keepdim):  # noqa: A002
    a = jnp.abs(x)
    if ord == math.inf:
        return jnp.max(a, axis=dim, keepdims=keepdim)
    if ord == -math.inf:
        return jnp.min(a, axis=dim, keepdims=keepdim)
    if ord == 0:
        return jnp.sum(a != 0, axis=dim, keepdims=keepdim).astype(x.dtype)
    if ord == 1:
        return jnp.sum(a, axis=dim, keepdims=keepdim)
    if ord == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=dim, keepdims=keepdim))
    return jnp.sum(a ** ord, axis=dim, keepdims=keepdim) ** (1.0 / ord)


def _norm_grad(g, x, out, ord, dim, keepdim):  # noqa: A002
    """PyTorch's norm_backward: 0 where the norm is 0; ties of the inf-norms share evenly."""
    _abs, sign, where = _ew.abs, _ew.sign, _ew.where
    if ord == 0:
        return None
    g = _unreduce(g, x.shape, dim, keepdim)
    if ord == 1:
        return g * sign(x)
    n = _unreduce(out, x.shape, dim, keepdim)
    if ord in (math.inf, -math.inf):
        mask = _abs(x) == n
        return g * sign(x) * mask / sum(mask, dim, keepdim=True)
    if ord == 2:
        return where(n == 0, 0.0, g * x / n)
    return where((n == 0) | (x == 0), 0.0, g * sign(x) * (_abs(x) / n) ** (ord - 1))


_norm = register(Op(
    "linalg_vector_norm", _norm_impl, promote="float", grad_name="LinalgVectorNormBackward0",
    vjp=lambda g, x, *, out, ord, dim, keepdim: _norm_grad(g, x, out, ord, dim, keepdim),  # noqa: A002
    twice_differentiable=False,
    samples=[Sample((5,), call=lambda x: x.norm()), Sample((2, 3), call=lambda x: x.norm(dim=1)),
             Sample((2, 3), call=lambda x: x.norm(1, dim=0, keepdim=True)),
             Sample((2, 3), call=lambda x: x.norm(3)), Sample((4,), call=lambda x: x.norm(0.5)),
             Sample((2, 3), call=lambda x: x.norm(float("inf"), dim=-1)),
             Sample((3,), call=lambda x: x.norm(-float("inf"))),
             Sample((), call=lambda x: x.norm(dim=0)),
             Sample((2, 3, 2), call=lambda x: x.norm(dim=(0, 2)))]))


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """The vector p-norm over ``dim`` (all dims by default) as ``torch.norm`` for numeric
    ``p`` and ``"fro"`` (the 2-norm of all elements of ``dim``); ``grad_fn`` is PyTorch's
    ``LinalgVectorNormBackward0``."""
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.category != 2:
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {_cpp_name(input.dtype)}")
    if p == "fro":
        p = 2
    if isinstance(p, str):
        raise NotImplementedError(f"norm: p={p!r} (matrix norms) is not supported; use a "
                                  "numeric p or 'fro'")
    if isinstance(dim, int):
        dim = (dim,)
    dims = _norm_dims(dim, input.ndim)
    p = float(p)
    if input.numel() == 0 and p in (math.inf, -math.inf):
        ps = "inf" if p > 0 else "-inf"
        if dims is None:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ps} norm on an empty "
                               "tensor because the operation does not have an identity")
        for d in dims:
            if input.shape[d] == 0:
                raise RuntimeError(f"linalg.vector_norm cannot compute the {ps} norm on the "
                                   f"dimension {d}because this dimension is empty and the "
                                   "operation does not have an identity")
    return apply(_norm, input, ord=p, dim=dims, keepdim=keepdim)


_norm.public = norm
