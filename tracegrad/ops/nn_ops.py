"""Ops for ``tracegrad.nn``, registered for speed (STYLE: an op gets its own rule only for
stability or speed). (Not ``ops/nn.py``: ``from .ops import *`` in ``tracegrad/__init__``
would bind that module as ``tracegrad.nn`` and shadow the real ``tracegrad.nn`` package.)

``linear(x, w, b)`` builds PyTorch's graph: ``addmm(b, x, w.t())`` for a matrix input (a
flattened one for other inputs with a 1-D bias, viewed back), ``mm(x, w.t())`` without a bias,
so ``grad_fn`` and ``next_functions`` read as PyTorch's (``AddmmBackward0`` over the bias, the
input and ``TBackward0`` of the weight). The products' rules need no transposes of their own:
``addmm``'s gradient for ``x`` is ``linear(g, wt) = g @ wt^T`` and for ``wt`` it is
``linear_wgrad(x, g) = x^T g`` (contracted over the leading dims, one dot each); the bias
gradient is ``g`` summed by OpNode's unbroadcasting. Both helper ops are differentiable again
in tracegrad ops, so create_graph and gradgradcheck work.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from .._tensor import _tensor_type_name
from ._registry import Op, Sample, apply, register
from .linalg import _C_TYPE, _SCALAR, matmul, mm
from .shape import reshape, t, unsqueeze

__all__ = ["linear", "linear_wgrad", "addmm"]


def _linear_impl(x, w, b=None):
    out = jnp.matmul(x, w.T)
    return out if b is None else out + b


def _apply_linear(x, w, b=None):
    return apply(_linear, x, w) if b is None else apply(_linear, x, w, b)


# ``x @ w^T (+ b)`` as one op: the rules' product ``g @ wt^T`` (PyTorch's mm in a backward)
_linear = register(Op(
    "linear", _linear_impl, promote="all", grad_name="MmBackward0",
    vjp=(lambda g, x, w, b=None, *, out: matmul(g, w),
         lambda g, x, w, b=None, *, out: linear_wgrad(g, x),
         lambda g, x, w, b=None, *, out: g),  # reduced to b's shape by OpNode
    samples=[Sample((4, 3), (5, 3), (5,), call=_apply_linear),
             Sample((4, 3), (5, 3), call=_apply_linear),
             Sample((3,), (2, 3), (2,), call=_apply_linear),
             Sample((2, 4, 3), (5, 3), (5,), call=_apply_linear),
             Sample((4, 3), (5, 3), (1, 5), call=_apply_linear)]))
_linear.public = _apply_linear

_addmm = register(Op(
    "addmm", lambda b, x, wt: b + jnp.matmul(x, wt), grad_name="AddmmBackward0",
    vjp=(lambda g, b, x, wt, *, out: g,  # reduced to b's shape by OpNode
         lambda g, b, x, wt, *, out: apply(_linear, g, wt),
         lambda g, b, x, wt, *, out: linear_wgrad(x, g)),
    samples=[Sample((4,), (2, 3), (3, 4)), Sample((2, 4), (2, 3), (3, 4)),
             Sample((), (2, 3), (3, 4)), Sample((1, 4), (1, 3), (3, 4))]))


def _expand_msg(bias, target):
    """PyTorch's expand error for the bias of a fused addmm, or None when it expands."""
    bs = tuple(bias.shape)
    if len(bs) > len(target):
        return (f"expand({_tensor_type_name(bias)}{{{list(bs)}}}, size={list(target)}): the number "
                f"of sizes provided ({len(target)}) must be greater or equal to the number of "
                f"dimensions in the tensor ({len(bs)})")
    off = len(target) - len(bs)
    for j, s in enumerate(bs):
        if s != target[off + j] and s != 1:
            return (f"The expanded size of the tensor ({target[off + j]}) must match the existing "
                    f"size ({s}) at non-singleton dimension {off + j}.  Target sizes: "
                    f"{list(target)}.  Tensor sizes: {list(bs)}")
    return None


def _check_addmm(bias, x, wt):
    if x.ndim != 2:
        raise RuntimeError(f"mat1 must be a matrix, got {x.ndim}-D tensor")
    if wt.ndim != 2:
        raise RuntimeError(f"mat2 must be a matrix, got {wt.ndim}-D tensor")
    if x.shape[1] != wt.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({x.shape[0]}x{x.shape[1]} "
                           f"and {wt.shape[0]}x{wt.shape[1]})")
    if bias.dtype is not wt.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{_SCALAR[bias.dtype.name]} and {_SCALAR[wt.dtype.name]}")
    if x.dtype is not wt.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{_SCALAR[x.dtype.name]} and {_SCALAR[wt.dtype.name]}")
    msg = _expand_msg(bias, (x.shape[0], wt.shape[1]))
    if msg is not None:
        raise RuntimeError(msg)


def addmm(input, mat1, mat2):  # noqa: A002
    """``input + mat1 @ mat2`` (as ``torch.addmm`` with ``beta = alpha = 1``); ``grad_fn`` is
    ``AddmmBackward0``."""
    _check_addmm(input, mat1, mat2)
    return apply(_addmm, input, mat1, mat2)


_addmm.public = addmm


def _view_op(name, grad_name):
    """A reshape under one of PyTorch's other names for it (the ops its matmul folds with)."""
    return register(Op(name, lambda x, *, shape: jnp.reshape(x, shape), grad_name=grad_name,
                       vjp=lambda g, x, *, out, shape: reshape(g, x.shape),
                       samples=[Sample((2, 3), call=lambda x: apply(_REG_VIEWS[name], x,
                                                                    shape=(3, 2)))]))


_REG_VIEWS = {}
_REG_VIEWS["unsafe_view"] = _unsafe_view = _view_op("unsafe_view", "UnsafeViewBackward0")
_REG_VIEWS["squeeze_inplace"] = _squeeze_ = _view_op("squeeze_inplace", "SqueezeBackward4")


def linear(input, weight, bias=None):  # noqa: A002
    """``input @ weight.T + bias`` (``weight`` is ``(out_features, in_features)``), with
    PyTorch's graph and errors: ``addmm(bias, input, weight.t())`` (``AddmmBackward0``) for a
    2-D input, or any input with a 1-D bias (flattened to 2-D and viewed back:
    ``ViewBackward0``); ``mm(input, weight.t())`` without a bias (``MmBackward0``, under
    ``UnsafeViewBackward0`` / ``SqueezeBackward4`` for N-D / 1-D inputs); otherwise the
    product and then ``add_(bias)``. ``tracegrad.nn.functional.linear`` calls it."""
    di, dw = input.ndim, weight.ndim
    if di == 0 or dw == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are "
                           f"{di}D and {dw}D")
    wt = t(weight)  # raises PyTorch's error for a weight of more than 2 dims
    if bias is not None and (di == 2 or bias.ndim == 1):
        lead = tuple(input.shape[:-1])
        x2 = input if di == 2 else reshape(input, (math.prod(lead), input.shape[-1]))
        _check_addmm(bias, x2, wt)
        out = apply(_addmm, bias, x2, wt)
        return out if di == 2 else reshape(out, lead + (wt.shape[-1],))
    if dw == 1:
        out = matmul(input, wt)
    elif di == 2:
        out = mm(input, wt)
    elif di == 1:
        _check_mm_dtype(input, wt, (1, input.shape[0]))
        out = apply(_squeeze_, mm(unsqueeze(input, 0), wt), shape=(wt.shape[1],))
    else:
        lead = tuple(input.shape[:-1])
        _check_mm_dtype(input, wt, (math.prod(lead), input.shape[-1]))
        out = mm(reshape(input, (-1, input.shape[-1])), wt)
        out = apply(_unsafe_view, out, shape=lead + (wt.shape[1],))
    return out if bias is None else out.add_(bias)


def _check_mm_dtype(input, wt, rows):  # noqa: A002
    """mm's checks on the folded input, before any view of it is made."""
    if rows[1] != wt.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows[0]}x{rows[1]} and "
                           f"{wt.shape[0]}x{wt.shape[1]})")
    if input.dtype is not wt.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_C_TYPE[input.dtype.name]} != {_C_TYPE[wt.dtype.name]}")


def _wgrad_impl(g, x):
    if g.ndim == 1:
        return jnp.outer(g, x)
    g2 = g.reshape(-1, g.shape[-1]).T
    if _ON_CPU:
        # XLA's CPU dot is markedly slower contracting the leading dim of both operands
        # (MLP sizes: 0.76 -> 0.50 ms): make g^T (the small operand) a real array first
        g2 = lax.optimization_barrier(g2)
    return g2 @ x.reshape(-1, x.shape[-1])


_ON_CPU = jax.default_backend() == "cpu"


_linear_wgrad = register(Op(
    "linear_wgrad", _wgrad_impl, promote="all", grad_name="MmBackward0",
    vjp=(lambda gg, g, x, *, out: _apply_linear(x, gg),
         lambda gg, g, x, *, out: matmul(g, gg)),
    samples=[Sample((4, 5), (4, 3)), Sample((2, 4, 5), (2, 4, 3)), Sample((5,), (3,))]))


def linear_wgrad(grad, input):  # noqa: A002
    """``grad^T @ input`` contracted over all leading dims: the weight gradient of
    ``linear`` (shape ``(out_features, in_features)``)."""
    return apply(_linear_wgrad, grad, input)


_linear_wgrad.public = linear_wgrad
