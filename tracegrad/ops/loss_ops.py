"""Loss functions as registered ops, each reducing inside the op (``reduction`` is a param):
``binary_cross_entropy``, ``binary_cross_entropy_with_logits`` (weight, pos_weight),
``smooth_l1_loss``, ``huber_loss``; and the sparse ops ``embedding`` (padding_idx) and
``one_hot``. PyTorch's grad_fn names (``BinaryCrossEntropyBackward0``, ``EmbeddingBackward0``,
...). The composite losses (``l1_loss``, ``kl_div``) are tracegrad ops in ``nn.functional``,
as they are in PyTorch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ._registry import Const, Op, Sample, register
from .elementwise import abs as _abs, log, log1p, sigmoid, sign, where
from .shape import expand, unsqueeze

__all__ = ["binary_cross_entropy_op", "bce_with_logits_op", "smooth_l1_op", "huber_op",
           "embedding_op", "one_hot_op"]


def _reduce(loss, reduction):
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _unreduce(g, shape, reduction):
    """The incoming gradient of a reduced loss, spread back over the elementwise losses."""
    if reduction == "none":
        return g
    g = expand(g, shape)
    if reduction == "mean":
        n = 1
        for s in shape:
            n *= s
        g = g / n
    return g


def _w(w, g):
    return g if w is None else g * w


# ----------------------------------------------------------------------------- BCE
def _bce_impl(x, t, w, *, reduction):
    # PyTorch clamps each log at -100, so a probability of exactly 0 or 1 gives a finite loss
    loss = -(t * jnp.maximum(jnp.log(x), -100.0) + (1 - t) * jnp.maximum(jnp.log1p(-x), -100.0))
    return _reduce(loss if w is None else loss * w, reduction)


def _bce_dx(g, x, t, w, reduction):
    g = _w(w, _unreduce(g, x.shape, reduction))
    d = (1 - x) * x
    return g * (x - t) / where(d > 1e-12, d, 1e-12)


def _bce_dt(g, x, t, w, reduction):
    g = _w(w, _unreduce(g, x.shape, reduction))
    return g * (log1p(-x) - log(x))


_S = [Sample((4,), Const([0.0, 1.0, 0.3, 0.7]), Const(None), reduction="mean"),
      Sample((2, 3), (2, 3), Const([0.5, 2.0, 1.0]), reduction="none"),
      Sample((5,), (5,), Const(None), reduction="sum")]
binary_cross_entropy_op = register(Op(
    "binary_cross_entropy", _bce_impl, grad_name="BinaryCrossEntropyBackward0",
    vjp=(lambda g, x, t, w, *, out, reduction: _bce_dx(g, x, t, w, reduction),
         lambda g, x, t, w, *, out, reduction: _bce_dt(g, x, t, w, reduction), None),
    domain=(0.1, 0.9), samples=_S))
binary_cross_entropy_op.public = binary_cross_entropy_op


def _bcel_impl(x, t, w, pw, *, reduction):
    sp = jnp.log1p(jnp.exp(-jnp.abs(x))) + jnp.maximum(-x, 0)  # softplus(-x), stably
    if pw is None:
        loss = (1 - t) * x + sp
    else:
        loss = (1 - t) * x + (1 + (pw - 1) * t) * sp
    return _reduce(loss if w is None else loss * w, reduction)


def _softplus_neg(x):
    return log1p((-_abs(x)).exp()) + where(x < 0, -x, 0.0)


def _bcel_dx(g, x, t, w, pw, reduction):
    g = _w(w, _unreduce(g, x.shape, reduction))
    if pw is None:
        return g * (sigmoid(x) - t)
    return g * ((1 + (pw - 1) * t) * sigmoid(x) - pw * t)


def _bcel_dt(g, x, t, w, pw, reduction):
    g = _w(w, _unreduce(g, x.shape, reduction))
    if pw is None:
        return -g * x
    return g * ((pw - 1) * _softplus_neg(x) - x)


bce_with_logits_op = register(Op(
    "binary_cross_entropy_with_logits", _bcel_impl,
    grad_name="BinaryCrossEntropyWithLogitsBackward0",
    vjp=(lambda g, x, t, w, pw, *, out, reduction: _bcel_dx(g, x, t, w, pw, reduction),
         lambda g, x, t, w, pw, *, out, reduction: _bcel_dt(g, x, t, w, pw, reduction),
         None, None),
    samples=[Sample((4,), Const([0.0, 1.0, 0.3, 1.0]), Const(None), Const(None), reduction="mean"),
             Sample((2, 3), (2, 3), Const([1.5, 1.0, 0.2]), Const([0.5, 2.0, 1.0]), reduction="none"),
             Sample((5,), (5,), Const(None), Const(None), reduction="sum")]))
bce_with_logits_op.public = bce_with_logits_op


# ----------------------------------------------------------------------------- smooth L1 / Huber
def _smooth_impl(x, t, *, reduction, beta):
    d = jnp.abs(x - t)
    return _reduce(jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def _smooth_d(g, x, t, reduction, beta):
    d = x - t
    return _unreduce(g, d.shape, reduction) * where(_abs(d) < beta, d / beta, sign(d))


smooth_l1_op = register(Op(
    "smooth_l1_loss", _smooth_impl, promote="all", grad_name="SmoothL1LossBackward0",
    twice_differentiable=False,
    vjp=(lambda g, x, t, *, out, reduction, beta: _smooth_d(g, x, t, reduction, beta),
         lambda g, x, t, *, out, reduction, beta: -_smooth_d(g, x, t, reduction, beta)),
    samples=[Sample((6,), (6,), reduction="mean", beta=1.0),
             Sample((2, 3), (2, 3), reduction="none", beta=0.5)]))
smooth_l1_op.public = smooth_l1_op


def _huber_impl(x, t, *, reduction, delta):
    d = jnp.abs(x - t)
    return _reduce(jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def _huber_d(g, x, t, reduction, delta):
    d = x - t
    return _unreduce(g, d.shape, reduction) * where(_abs(d) < delta, d, delta * sign(d))


huber_op = register(Op(
    "huber_loss", _huber_impl, promote="all", grad_name="HuberLossBackward0",
    twice_differentiable=False,
    vjp=(lambda g, x, t, *, out, reduction, delta: _huber_d(g, x, t, reduction, delta),
         lambda g, x, t, *, out, reduction, delta: -_huber_d(g, x, t, reduction, delta)),
    samples=[Sample((6,), (6,), reduction="mean", delta=1.0),
             Sample((2, 3), (2, 3), reduction="sum", delta=0.5)]))
huber_op.public = huber_op


# ----------------------------------------------------------------------------- embedding
def _emb_bwd_impl(g, idx, *, num_weights, padding_idx):
    out = jnp.zeros((num_weights,) + g.shape[idx.ndim:], g.dtype).at[idx].add(g)
    return out if padding_idx is None else out.at[padding_idx].set(0)


def _emb_mask(gg, idx, padding_idx):
    picked = embedding_op(gg, idx, padding_idx=padding_idx)
    if padding_idx is None:
        return picked
    return where(unsqueeze(idx != padding_idx, -1), picked, 0.0)


_IDX = Const([[0, 2], [2, 3]])
embedding_op = register(Op(
    "embedding", lambda w, idx, *, padding_idx: w[idx], grad_name="EmbeddingBackward0",
    vjp=(lambda g, w, idx, *, out, padding_idx: embedding_backward_op(
        g, idx, num_weights=w.shape[0], padding_idx=padding_idx), None),
    # (padding_idx's zero gradient is PyTorch's choice, not the derivative: checked against
    # PyTorch in tests/nn, not by finite differences here)
    samples=[Sample((4, 3), _IDX, padding_idx=None)]))
embedding_op.public = embedding_op

embedding_backward_op = register(Op(
    "embedding_backward", _emb_bwd_impl, grad_name="EmbeddingBackwardBackward0",
    vjp=(lambda gg, g, idx, *, out, num_weights, padding_idx: _emb_mask(gg, idx, padding_idx),
         None),
    samples=[Sample((2, 2, 3), _IDX, num_weights=4, padding_idx=None),
             Sample((2, 2, 3), _IDX, num_weights=5, padding_idx=2)]))
embedding_backward_op.public = embedding_backward_op

one_hot_op = register(Op(
    "one_hot", lambda t, *, num_classes: jax.nn.one_hot(t, num_classes, dtype=jnp.int64),
    samples=[Sample(Const([0, 2, 1]), num_classes=3)]))
one_hot_op.public = one_hot_op
