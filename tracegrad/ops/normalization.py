"""Normalisation layers as fused registered ops: ``batch_norm`` (training: batch statistics;
eval: running statistics), ``layer_norm`` and ``group_norm``, with PyTorch's grad_fn
(``NativeBatchNormBackward0``, ``NativeLayerNormBackward0``, ``NativeGroupNormBackward0``).

One op each rather than a chain of mean/var/sub/mul: the forward is one XLA executable, and
the backward is the closed form ``dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))``
(``gw = g * weight``) instead of differentiating through the statistics op by op. The rules
are tracegrad ops, so double backward works. The public functions (and the update of running
statistics, an in-place op on the buffers under ``no_grad``) live in ``nn.functional``.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ._registry import Const, Op, Sample, register
from .elementwise import rsqrt
from .reduction import mean, sum as _sum
from .shape import reshape

__all__ = ["batch_norm_op", "layer_norm_op", "group_norm_op"]


def _cshape(ndim, c):
    return (1, c) + (1,) * (ndim - 2)


def _affine(out, w, b, shape):
    if w is not None:
        out = out * w.reshape(shape)
    if b is not None:
        out = out + b.reshape(shape)
    return out


def _jnorm(x, axes, eps):
    m = jnp.mean(x, axis=axes, keepdims=True)
    xc = x - m
    return xc * lax.rsqrt(jnp.mean(xc * xc, axis=axes, keepdims=True) + eps)


# ----------------------------------------------------------------------------- batch norm
def _bn_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _bn_impl(x, w, b, rm, rv, *, training, eps):
    shape = _cshape(x.ndim, x.shape[1])
    if training:
        xhat = _jnorm(x, _bn_axes(x.ndim), eps)
    else:
        xhat = (x - rm.reshape(shape)) * lax.rsqrt(rv.reshape(shape) + eps)
    return _affine(xhat, w, b, shape)


def _stats(x, axes, eps):
    """``(xhat, rstd)`` over ``axes`` (kept), in tracegrad ops."""
    xc = x - mean(x, axes, keepdim=True)
    rstd = rsqrt(mean(xc * xc, axes, keepdim=True) + eps)
    return xc * rstd, rstd


def _bn_xhat(x, rm, rv, training, eps):
    if training:
        return _stats(x, _bn_axes(x.ndim), eps)
    shape = _cshape(x.ndim, x.shape[1])
    rstd = rsqrt(reshape(rv, shape) + eps)
    return (x - reshape(rm, shape)) * rstd, rstd


def _norm_dx(gw, xhat, rstd, axes):
    return rstd * (gw - mean(gw, axes, keepdim=True) - xhat * mean(gw * xhat, axes, keepdim=True))


def _bn_dx(g, x, w, rm, rv, training, eps):
    xhat, rstd = _bn_xhat(x, rm, rv, training, eps)
    gw = g if w is None else g * reshape(w, _cshape(x.ndim, x.shape[1]))
    if not training:
        return gw * rstd
    return _norm_dx(gw, xhat, rstd, _bn_axes(x.ndim))


def _bn_dw(g, x, rm, rv, training, eps):
    return _sum(g * _bn_xhat(x, rm, rv, training, eps)[0], _bn_axes(x.ndim))


_N = Const(None)  # an absent optional input
_RM, _RV = Const([0.1, -0.2, 0.3]), Const([0.5, 1.0, 2.0])
batch_norm_op = register(Op(
    "batch_norm", _bn_impl, grad_name="NativeBatchNormBackward0",
    vjp=(lambda g, x, w, b, rm, rv, *, out, training, eps: _bn_dx(g, x, w, rm, rv, training, eps),
         lambda g, x, w, b, rm, rv, *, out, training, eps: _bn_dw(g, x, rm, rv, training, eps),
         lambda g, x, w, b, rm, rv, *, out, training, eps: _sum(g, _bn_axes(g.ndim)),
         None, None),
    tol={"atol": 1e-9},
    samples=[Sample((4, 3), (3,), (3,), _N, _N, training=True, eps=1e-5),
             Sample((2, 3, 2, 2), (3,), _N, _N, _N, training=True, eps=1e-3),
             Sample((2, 3, 4), (3,), (3,), _RM, _RV, training=False, eps=1e-5),
             Sample((3, 3), _N, _N, _N, _N, training=True, eps=1e-5)]))
batch_norm_op.public = batch_norm_op


# ----------------------------------------------------------------------------- layer norm
def _ln_impl(x, w, b, *, nd, eps):
    out = _jnorm(x, tuple(range(x.ndim - nd, x.ndim)), eps)
    if w is not None:
        out = out * w
    if b is not None:
        out = out + b
    return out


def _ln_dx(g, x, w, nd, eps):
    axes = tuple(range(x.ndim - nd, x.ndim))
    xhat, rstd = _stats(x, axes, eps)
    return _norm_dx(g if w is None else g * w, xhat, rstd, axes)


def _ln_dw(g, x, nd, eps):
    return g * _stats(x, tuple(range(x.ndim - nd, x.ndim)), eps)[0]  # summed to w by OpNode


layer_norm_op = register(Op(
    "layer_norm", _ln_impl, grad_name="NativeLayerNormBackward0",
    vjp=(lambda g, x, w, b, *, out, nd, eps: _ln_dx(g, x, w, nd, eps),
         lambda g, x, w, b, *, out, nd, eps: _ln_dw(g, x, nd, eps),
         lambda g, x, w, b, *, out, nd, eps: g),
    tol={"atol": 1e-9},
    samples=[Sample((3, 4), (4,), (4,), nd=1, eps=1e-5),
             Sample((2, 2, 3), (2, 3), _N, nd=2, eps=1e-3),
             Sample((2, 5), _N, _N, nd=1, eps=1e-5)]))
layer_norm_op.public = layer_norm_op


# ----------------------------------------------------------------------------- group norm
def _gn_impl(x, w, b, *, groups, eps):
    n, c = x.shape[:2]
    xhat = _jnorm(x.reshape(n, groups, -1), (2,), eps).reshape(x.shape)
    return _affine(xhat, w, b, _cshape(x.ndim, c))


def _gn_xhat(x, groups, eps):
    n = x.shape[0]
    xhat, rstd = _stats(reshape(x, (n, groups, -1)), (2,), eps)
    return xhat, rstd


def _gn_dx(g, x, w, groups, eps):
    n, c = x.shape[:2]
    xhat, rstd = _gn_xhat(x, groups, eps)
    gw = g if w is None else g * reshape(w, _cshape(x.ndim, c))
    return reshape(_norm_dx(reshape(gw, (n, groups, -1)), xhat, rstd, (2,)), x.shape)


def _gn_dw(g, x, groups, eps):
    xhat = reshape(_gn_xhat(x, groups, eps)[0], x.shape)
    return _sum(g * xhat, _bn_axes(x.ndim))


group_norm_op = register(Op(
    "group_norm", _gn_impl, grad_name="NativeGroupNormBackward0",
    vjp=(lambda g, x, w, b, *, out, groups, eps: _gn_dx(g, x, w, groups, eps),
         lambda g, x, w, b, *, out, groups, eps: _gn_dw(g, x, groups, eps),
         lambda g, x, w, b, *, out, groups, eps: _sum(g, _bn_axes(g.ndim))),
    tol={"atol": 1e-9},
    samples=[Sample((2, 4, 3), (4,), (4,), groups=2, eps=1e-5),
             Sample((1, 6, 2, 2), (6,), _N, groups=3, eps=1e-3)]))
group_norm_op.public = group_norm_op
