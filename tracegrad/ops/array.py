"""Array ops PyTorch code reaches for: ``tril``/``triu``, ``flip``, ``roll``, ``cumsum``,
``masked_fill``, the ``all``/``any`` reductions and ``isclose``/``allclose``/``equal``.
Each differentiable one is a registered op whose rule is the same family (``tril``'s is
``tril``, ``flip``'s is ``flip``, ``roll``'s a roll back, ``cumsum``'s a reversed cumsum),
with PyTorch's grad_fn names."""
from __future__ import annotations

import jax.numpy as jnp

from .. import _dtype as D
from .._tensor import _wrap_dim
from ._registry import Const, Op, Sample, apply, apply_inplace, register
from .elementwise import abs as _abs, isfinite, isnan, where

__all__ = ["tril", "triu", "flip", "roll", "cumsum", "masked_fill", "all", "any", "isclose",
           "allclose", "equal", "METHODS", "INPLACE"]


def _public(op, fn):
    fn.op = op
    op.public = fn
    return fn


_tril = register(Op("tril", lambda x, *, diagonal: jnp.tril(x, diagonal),
                    vjp=lambda g, x, *, out, diagonal: tril(g, diagonal),
                    samples=[Sample((3, 4), diagonal=0), Sample((2, 3, 3), diagonal=-1)]))
_triu = register(Op("triu", lambda x, *, diagonal: jnp.triu(x, diagonal),
                    vjp=lambda g, x, *, out, diagonal: triu(g, diagonal),
                    samples=[Sample((3, 4), diagonal=1), Sample((4, 3), diagonal=0)]))


def _check_2d(input, name):  # noqa: A002
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def tril(input, diagonal=0):  # noqa: A002
    """The lower triangle of the last two dims (below ``diagonal``), zeros elsewhere."""
    _check_2d(input, "tril")
    return apply(_tril, input, diagonal=int(diagonal))


def triu(input, diagonal=0):  # noqa: A002
    """The upper triangle of the last two dims (above ``diagonal``), zeros elsewhere."""
    _check_2d(input, "triu")
    return apply(_triu, input, diagonal=int(diagonal))


_public(_tril, tril)
_public(_triu, triu)

_flip = register(Op("flip", lambda x, *, dims: jnp.flip(x, dims),
                    vjp=lambda g, x, *, out, dims: apply(_flip, g, dims=dims),
                    samples=[Sample((3, 4), dims=(0,)), Sample((2, 3, 2), dims=(0, 2))]))


def flip(input, dims):  # noqa: A002
    """Reverse ``input`` along ``dims``."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    d = tuple(_wrap_dim(k, input.ndim) for k in dims)
    if len(set(d)) != len(d):
        raise RuntimeError(f"dims has duplicates, original flip dims size={len(d)}, but unique "
                           f"flip dims size={len(set(d))}")
    return apply(_flip, input, dims=d)


_public(_flip, flip)


def _roll_impl(x, *, shifts, dims):
    if dims is None:
        return jnp.roll(x.reshape(-1), shifts[0]).reshape(x.shape)
    return jnp.roll(x, shifts, dims)


_roll = register(Op("roll", _roll_impl,
                    vjp=lambda g, x, *, out, shifts, dims: apply(
                        _roll, g, shifts=tuple(-s for s in shifts), dims=dims),
                    samples=[Sample((5,), shifts=(2,), dims=(0,)),
                             Sample((3, 4), shifts=(1, -1), dims=(0, 1)),
                             Sample((2, 3), shifts=(4,), dims=None)]))


def roll(input, shifts, dims=None):  # noqa: A002
    """Shift elements along ``dims`` (cyclically), or over the flattened tensor."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return apply(_roll, input, shifts=shifts, dims=None)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    return apply(_roll, input, shifts=shifts, dims=tuple(_wrap_dim(d, input.ndim) for d in dims))


_public(_roll, roll)


def _cumsum_impl(x, *, dim, dtype):
    return jnp.cumsum(x, axis=dim, dtype=None if dtype is None else dtype.np)


def _rev_cumsum(g, dim):
    return flip(cumsum(flip(g, dim), dim), dim)


_cumsum = register(Op("cumsum", _cumsum_impl,
                      vjp=lambda g, x, *, out, dim, dtype: _rev_cumsum(g, dim),
                      samples=[Sample((5,), dim=0, dtype=None),
                               Sample((3, 4), dim=1, dtype=None)]))


def cumsum(input, dim, *, dtype=None):  # noqa: A002
    """Cumulative sum along ``dim``; integer and bool inputs sum in int64, as PyTorch."""
    if dtype is None and input.dtype.category != 2:
        dtype = D.int64
    return apply(_cumsum, input, dim=_wrap_dim(dim, max(input.ndim, 1)) if input.ndim else 0,
                 dtype=None if dtype is None else D.as_dtype(dtype))


_public(_cumsum, cumsum)

_masked_fill = register(Op(
    "masked_fill", lambda x, mask, value: jnp.where(mask, jnp.asarray(value, x.dtype), x),
    vjp=(lambda g, x, mask, value, *, out: where(mask, 0.0, g), None,
         lambda g, x, mask, value, *, out: where(mask, g, 0.0)),  # summed to value's shape
    samples=[Sample((3,), Const([True, False, True]), Const(0.5)),
             Sample((2, 3), Const([[True], [False]]), ()),
             Sample((2, 3), Const([False, True, True]), Const(-1.0))]))


def masked_fill(input, mask, value):  # noqa: A002
    """``value`` where ``mask`` (broadcast) is True, ``input`` elsewhere."""
    if mask.dtype is not D.bool:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    if hasattr(value, "ndim") and value.ndim != 0:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    return apply(_masked_fill, input, mask, value)


_public(_masked_fill, masked_fill)


def _bool_reduce(name, fn):
    op = register(Op(name, lambda x, *, dim, keepdim: fn(x, axis=dim, keepdims=keepdim),
                     samples=[Sample(Const([True, False, True])),
                              Sample(Const([[1.0, 0.0], [2.0, 3.0]]), dim=1, keepdim=True)]))

    def public(input, dim=None, keepdim=False):  # noqa: A002
        d = None if dim is None else tuple(_wrap_dim(k, input.ndim) for k in
                                           ((dim,) if isinstance(dim, int) else dim))
        return apply(op, input, dim=d, keepdim=keepdim)
    public.__name__ = name
    return _public(op, public)


all = _bool_reduce("all", jnp.all)  # noqa: A001
any = _bool_reduce("any", jnp.any)  # noqa: A001


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    """``|input - other| <= atol + rtol * |other|`` elementwise (equal infinities close; NaNs
    close to each other only with ``equal_nan``), as ``torch.isclose``."""
    if input.dtype is not other.dtype:
        raise RuntimeError(f"{other.dtype.name.capitalize()} did not match "
                           f"{input.dtype.name.capitalize()}")
    close = input == other
    if input.dtype.category == 2:
        fin = isfinite(input) & isfinite(other)
        close = close | (fin & (_abs(input - other) <= atol + rtol * _abs(other)))
        if equal_nan:
            close = close | (isnan(input) & isnan(other))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    """Whether every element of ``input`` is close to ``other`` (a Python bool)."""
    return bool(all(isclose(input, other, rtol, atol, equal_nan)))


def equal(input, other):  # noqa: A002
    """Whether the two tensors have the same shape and elements (a Python bool)."""
    return tuple(input.shape) == tuple(other.shape) and bool(all(input == other))


METHODS = dict(tril=tril, triu=triu, flip=flip, roll=roll, cumsum=cumsum,
               masked_fill=masked_fill, all=all, any=any, isclose=isclose, allclose=allclose,
               equal=equal)
INPLACE_METHODS = dict(
    tril_=lambda self, diagonal=0: apply_inplace(_tril, self, diagonal=int(diagonal)),
    triu_=lambda self, diagonal=0: apply_inplace(_triu, self, diagonal=int(diagonal)),
    masked_fill_=lambda self, mask, value: (masked_fill(self, mask, value),
                                            apply_inplace(_masked_fill, self, mask, value))[1])
