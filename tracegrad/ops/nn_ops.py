"""Ops for ``tracegrad.nn``, registered for speed (STYLE: an op gets its own rule only for
stability or speed). (Not ``ops/nn.py``: ``from .ops import *`` in ``tracegrad/__init__``
would bind that module as ``tracegrad.nn`` and shadow the real ``tracegrad.nn`` package.)

``linear(x, w, b) = x @ w.T + b`` composed from ``t``, ``matmul`` and ``add`` runs five
eager dispatches forward and backward, and three of them are transposes that copy whole
weight matrices (``t(w)`` forward, ``mT`` inside matmul's rule, ``t``'s own backward): about a
sixth of an MLP training step on CPU. As one op it is one XLA executable forward (the
transpose folds into the dot), and its rules need no transposes either: ``dx = g @ w``,
``dw = linear_wgrad(g, x)`` (``g^T x`` contracted over the leading dims, one dot), and the
bias gradient is ``g`` summed by OpNode's unbroadcasting. Both ops are differentiable again
in tracegrad ops, so create_graph and gradgradcheck work as for the composite.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._registry import Op, Sample, apply, register
from .linalg import matmul

__all__ = ["linear", "linear_wgrad"]


def _linear_impl(x, w, b=None):
    out = jnp.matmul(x, w.T)
    return out if b is None else out + b


def _linear_name(params, args):
    # PyTorch's grad_fn for F.linear: addmm / mm for a matrix input, views around them otherwise
    x, bias = args[0], len(args) > 2
    if x.ndim == 2:
        return "AddmmBackward0" if bias else "MmBackward0"
    if x.ndim == 1:
        return "ViewBackward0" if bias else "SqueezeBackward4"
    return "ViewBackward0" if bias else "UnsafeViewBackward0"


_linear = register(Op(
    "linear", _linear_impl, promote="all", grad_name=_linear_name,
    vjp=(lambda g, x, w, b=None, *, out: matmul(g, w),
         lambda g, x, w, b=None, *, out: linear_wgrad(g, x),
         lambda g, x, w, b=None, *, out: g),  # reduced to b's shape by OpNode
    samples=[Sample((4, 3), (5, 3), (5,)), Sample((4, 3), (5, 3)), Sample((3,), (2, 3), (2,)),
             Sample((2, 4, 3), (5, 3), (5,)), Sample((4, 3), (5, 3), (1, 5))]))


def linear(input, weight, bias=None):  # noqa: A002
    """``input @ weight.T + bias`` as one op (``weight`` is ``(out_features, in_features)``);
    ``tracegrad.nn.functional.linear`` calls it."""
    if weight.ndim != 2 or input.ndim == 0:  # a vector weight: PyTorch's matmul semantics
        out = matmul(input, weight if weight.ndim != 2 else weight.mT)
        return out if bias is None else out + bias
    if input.shape[-1] != weight.shape[-1]:
        rows = 1
        for s in input.shape[:-1]:
            rows *= s
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} "
                           f"and {weight.shape[1]}x{weight.shape[0]})")
    if bias is None:
        return apply(_linear, input, weight)
    return apply(_linear, input, weight, bias)


_linear.public = linear


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
    vjp=(lambda gg, g, x, *, out: linear(x, gg),
         lambda gg, g, x, *, out: matmul(g, gg)),
    samples=[Sample((4, 5), (4, 3)), Sample((2, 4, 5), (2, 4, 3)), Sample((5,), (3,))]))


def linear_wgrad(grad, input):  # noqa: A002
    """``grad^T @ input`` contracted over all leading dims: the weight gradient of
    ``linear`` (shape ``(out_features, in_features)``)."""
    return apply(_linear_wgrad, grad, input)


_linear_wgrad.public = linear_wgrad
