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

import numpy as np

from .._creation import tensor
from .._tensor import _tensor_type_name
from ._registry import Const, Op, Sample, apply, register
from .elementwise import where
from .linalg import _C_TYPE, _SCALAR, matmul, mm
from .reduction import sum as _sum
from .shape import _unsafe_view, reshape, t, unsqueeze

__all__ = ["linear", "linear_wgrad", "addmm", "mse_loss", "nll_loss"]


def _linear_impl(x, w, b=None):
    out = jnp.matmul(x, w.T)
    return out if b is None else out + b


def _apply_linear(x, w, b=None):
    return apply(_linear, x, w) if b is None else apply(_linear, x, w, b)


# ``x @ w^T (+ b)`` as one op: the rules' product ``g @ wt^T`` (PyTorch's mm in a backward)
_linear = register(Op(
    "linear", _linear_impl, promote="all", grad_name="MmBackward0", aten="aten::mm",
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


# 1-D input @ weight.t(): PyTorch's squeeze_ of the (1, out) product (SqueezeBackward4);
# the N-D case reuses reshape's _unsafe_view (ops/shape.py)
_squeeze_ = register(Op("squeeze_inplace", lambda x, *, shape: jnp.reshape(x, shape),
                        grad_name="SqueezeBackward4", aten="aten::squeeze_",
                        vjp=lambda g, x, *, out, shape: reshape(g, x.shape),
                        samples=[Sample((1, 3), call=lambda x: apply(_squeeze_, x, shape=(3,)))]))


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
    "linear_wgrad", _wgrad_impl, promote="all", grad_name="MmBackward0", aten="aten::mm",
    vjp=(lambda gg, g, x, *, out: _apply_linear(x, gg),
         lambda gg, g, x, *, out: matmul(g, gg)),
    samples=[Sample((4, 5), (4, 3)), Sample((2, 4, 5), (2, 4, 3)), Sample((5,), (3,))]))


def linear_wgrad(grad, input):  # noqa: A002
    """``grad^T @ input`` contracted over all leading dims: the weight gradient of
    ``linear`` (shape ``(out_features, in_features)``)."""
    return apply(_linear_wgrad, grad, input)


_linear_wgrad.public = linear_wgrad


# ----------------------------------------------------------------------------- losses
# mse_loss and nll_loss are ops of their own, as in PyTorch, so their grad_fn is PyTorch's
# (MseLossBackward0, NllLossBackward0) and each is one dispatch forward and backward.
_REDUCTIONS = ("mean", "sum", "none")


def _mse_impl(x, y, *, reduction):
    d = x - y
    loss = d * d
    if reduction == "none":
        return loss
    return jnp.sum(loss) if reduction == "sum" else jnp.mean(loss)


def _mse_grad(g, x, y, reduction):
    d = x - y
    return 2 * g * d / d.numel() if reduction == "mean" else 2 * g * d


_mse = register(Op(
    "mse_loss", _mse_impl, promote="float", grad_name="MseLossBackward0",
    vjp=(lambda g, x, y, *, out, reduction: _mse_grad(g, x, y, reduction),
         lambda g, x, y, *, out, reduction: -_mse_grad(g, x, y, reduction)),
    samples=[Sample((4,), (4,), reduction="mean"), Sample((2, 3), (2, 3), reduction="sum"),
             Sample((2, 3), (2, 3), reduction="none"), Sample((), (), reduction="mean"),
             Sample((2, 3), Const([1.0, -1.0, 0.5]), reduction="mean")]))


def mse_loss(input, target, *, reduction="mean"):  # noqa: A002
    """``((input - target) ** 2)`` reduced by ``reduction`` (one op: ``MseLossBackward0``)."""
    if input.dtype.category != 2 and target.dtype.category != 2:
        raise NotImplementedError(f"\"mse_cpu\" not implemented for "
                                  f"'{_SCALAR[input.dtype.name]}'")
    return apply(_mse, input, target, reduction=reduction)


_mse.public = mse_loss


def _class_dim(x):
    return 0 if x.ndim == 1 else 1


def _nll_impl(x, target, weight=None, *, reduction, ignore_index):
    cd = 0 if x.ndim == 1 else 1
    t = target.astype(jnp.int64)
    valid = t != ignore_index
    tc = jnp.where(valid, t, 0)
    # (an out-of-range target -- only unchecked inside compiled code -- picks 0, as the rule)
    picked = jnp.squeeze(jnp.take_along_axis(x, jnp.expand_dims(tc, cd), axis=cd, mode="fill",
                                             fill_value=0), cd)
    w = valid.astype(x.dtype) if weight is None else jnp.where(
        valid, jnp.take(weight, tc, mode="fill", fill_value=0), 0)
    loss = -picked * w
    if reduction == "none":
        return loss
    return jnp.sum(loss) if reduction == "sum" else jnp.sum(loss) / jnp.sum(w)


def _nll_weights(x, target, weight, ignore_index):
    """Each target's weight (0 where ignored) and the class mask, in tracegrad ops."""
    cd = _class_dim(x)
    n = x.shape[cd]
    shape = [1] * x.ndim
    shape[cd] = n
    mask = unsqueeze(target, cd) == tensor(np.arange(n).reshape(shape), device=x.device)
    valid = target != ignore_index
    if weight is None:
        w = where(valid, 1.0, 0.0).to(x.dtype)
    else:
        w = where(valid, _sum(where(mask, reshape(weight, tuple(shape)), 0.0), cd), 0.0)
    return w, mask


def _nll_grad(g, x, target, weight, reduction, ignore_index):
    w, mask = _nll_weights(x, target, weight, ignore_index)
    if reduction == "mean":
        g = g / _sum(w)
    return where(mask, -unsqueeze(g * w, _class_dim(x)), 0.0)


_nll = register(Op(
    "nll_loss", _nll_impl, grad_name="NllLossBackward0",
    vjp=(lambda g, x, target, weight=None, *, out, reduction, ignore_index:
         _nll_grad(g, x, target, weight, reduction, ignore_index), None, None),
    samples=[Sample((4, 3), Const([0, 2, 1, 2]), reduction="mean", ignore_index=-100),
             Sample((4, 3), Const([0, 2, 1, 2]), reduction="sum", ignore_index=1),
             Sample((4, 3), Const([0, 2, 1, 2]), reduction="none", ignore_index=2),
             Sample((3,), Const(np.array(1)), reduction="mean", ignore_index=-100),
             Sample((2, 3, 2), Const([[0, 2], [1, 1]]), reduction="mean", ignore_index=-100)]))


def _check_nll(input, target, weight):  # noqa: A002
    """PyTorch's checks of nll_loss, in its order: dims and batch sizes, target dtype, weight."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        if target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{target.shape[0]}")
        if target.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif target.ndim == 0 or input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 1}).")
    elif input.ndim == 2 and target.ndim != 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"Expected target size {[input.shape[0]] + list(input.shape[2:])}, "
                           f"got {list(target.shape)}")
    if target.dtype.name not in ("int64", "uint8"):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{_SCALAR[target.dtype.name]}")
    n = input.shape[_class_dim(input)]
    if weight is not None:
        if tuple(weight.shape) != (n,):
            raise RuntimeError(f"weight tensor should be defined either for all {n} classes or "
                               f"no classes but got weight tensor of shape: {list(weight.shape)}")
        if weight.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {_SCALAR[input.dtype.name]} but found "
                               f"{_SCALAR[weight.dtype.name]}")


def nll_loss(input, target, weight=None, *, reduction="mean", ignore_index=-100):  # noqa: A002
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``
    (classes along dim 1, or dim 0 for a 1-D input), one op (``NllLossBackward0``).
    Targets equal to ``ignore_index`` add nothing; ``"mean"`` divides by the summed weight of
    the targets that count. (Bounds of the targets are checked by the caller.)"""
    _check_nll(input, target, weight)
    if input.ndim == 1 and target.ndim == 1:  # a 1-D input's one target, given as shape [1]
        target = reshape(target, ())
    args = (input, target) if weight is None else (input, target, weight)
    return apply(_nll, *args, reduction=reduction, ignore_index=ignore_index)


_nll.public = nll_loss
