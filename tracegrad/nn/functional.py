"""``tracegrad.nn.functional``: activations, ``linear`` and losses over registry ops.

Every function here is one or a few tracegrad ops, so its gradient (and its second
derivative, and its compiled form) comes from the ops' own VJP rules; nothing here has a rule
of its own. As in PyTorch, ``mse_loss`` and ``nll_loss`` are ops of their own
(``MseLossBackward0``, ``NllLossBackward0``), ``linear`` is ``addmm(bias, x, weight.t())``,
and ``cross_entropy`` is ``nll_loss(log_softmax(x))`` (``log_softmax`` is a registry op,
computed stably by jax).

    >>> import tracegrad as torch
    >>> import tracegrad.nn.functional as F
    >>> logits = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> loss = F.cross_entropy(logits, torch.tensor([0]))
    >>> loss.backward()
    >>> logits.grad
    tensor([[-0.2144,  0.1753,  0.0391]])
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _creation as C
from .. import _dtype as D
from .. import ops as _ops
from ..ops import nn_ops as _nn_ops
from .._state import STATE

__all__ = ["relu", "relu_", "tanh", "sigmoid", "softmax", "log_softmax", "linear", "mse_loss",
           "cross_entropy", "nll_loss"]


# ----------------------------------------------------------------------------- activations
def relu(input, inplace=False):  # noqa: A002
    """``max(input, 0)`` elementwise (in place with ``inplace=True``)."""
    return input.relu_() if inplace else _ops.relu(input)


def relu_(input):  # noqa: A002
    return input.relu_()


def tanh(input):  # noqa: A002
    return _ops.tanh(input)


def sigmoid(input):  # noqa: A002
    return _ops.sigmoid(input)


def _softmax_dim(ndim, name):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """``exp(x) / exp(x).sum(dim)``, computed stably."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "softmax")
    return _ops.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """``log(softmax(x))``, computed stably (a registry op)."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "log_softmax")
    return _ops.log_softmax(input, dim, dtype=dtype)


def linear(input, weight, bias=None):  # noqa: A002
    """``input @ weight.T + bias`` (``weight`` is ``(out_features, in_features)``), as one
    registry op (``tracegrad.ops.nn_ops.linear``: one dispatch, no transposed copies)."""
    return _ops.linear(input, weight, bias)


# ----------------------------------------------------------------------------- losses
def _reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  "reduction='...' instead.", stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def _reduce(loss, reduction):
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    return loss


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):  # noqa: A002
    """Mean squared error ``((input - target) ** 2)``, reduced by ``reduction``
    (``"mean"``, ``"sum"`` or ``"none"``)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=2)
    if weight is None:
        return _nn_ops.mse_loss(input, target, reduction=reduction)
    loss = _ops.square(input - target) * weight
    return _reduce(loss, reduction)


def _check_targets(target, n_classes, ignore_index):
    """PyTorch's IndexError for a class index outside ``[0, n_classes)`` (not ignore_index).
    Reads the targets on the host (they are usually input data, ready at once); while tracing
    there are no values to read and the check is skipped."""
    if STATE.tracer is not None:
        return
    try:
        t = np.asarray(target._data.value)
    except Exception:  # noqa: BLE001 - an abstract (jax-traced) value: nothing to check
        return
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(f"Target {t[bad].flat[0]} is out of bounds.")


def _onehot(target, class_dim, ndim, n_classes, device, ignore_index):
    """``target`` as a bool mask with the classes along ``class_dim`` (an ignored target
    matches no class). Selecting with it needs no index tensors, so no bounds check that
    would wait for the device in the middle of a step."""
    shape = [1] * ndim
    shape[class_dim] = n_classes
    classes = np.arange(n_classes)
    if 0 <= ignore_index < n_classes:  # the ignored class matches nothing
        classes[ignore_index] = -1 if ignore_index else n_classes
    return _ops.unsqueeze(target, class_dim) == C.tensor(classes.reshape(shape), device=device)


def _pick(x, onehot, class_dim):
    """``x`` at each target's class (0 where the target is ignored)."""
    return _ops.sum(_ops.where(onehot, x, 0.0), class_dim)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
             reduction="mean"):
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``
    (classes along dim 1, or dim 0 for a 1-D input). Targets equal to ``ignore_index`` add
    nothing; ``"mean"`` divides by the summed weight of the targets that count."""
    reduction = _reduction(size_average, reduce, reduction)
    _nn_ops._check_nll(input, target, weight)
    _check_targets(target, input.shape[0 if input.ndim == 1 else 1], ignore_index)
    return _nn_ops.nll_loss(input, target, weight, reduction=reduction, ignore_index=ignore_index)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,  # noqa: A002
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """``nll_loss(log_softmax(input, class_dim), target)`` for class-index targets (int
    tensors), or ``-(target * log_softmax(input)).sum(class_dim)`` for class-probability
    targets (float tensors of ``input``'s shape); with optional class ``weight``,
    ``ignore_index`` and ``label_smoothing``, as ``torch.nn.functional.cross_entropy``."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = _ops.log_softmax(input, class_dim)
    wshape = [1] * input.ndim
    wshape[class_dim] = n_classes
    if target.dtype.category == D.FLOATING and tuple(target.shape) == tuple(input.shape):
        # class probabilities (a float target of another shape is taken as class indices,
        # and refused by nll_loss's dtype check, as PyTorch does)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * target
        if weight is not None:
            prod = prod * _ops.reshape(weight, wshape)
        loss = -_ops.sum(prod, class_dim)
        if reduction == "mean":
            return _ops.sum(loss) / (input.numel() // n_classes if input.ndim > 1 else 1)
        return _reduce(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    valid = target != ignore_index
    if weight is None:
        smooth = -_ops.sum(logp, class_dim)
    else:
        smooth = -_ops.sum(logp * _ops.reshape(weight, wshape), class_dim)
    smooth = _ops.where(valid, smooth, 0.0)
    if reduction == "mean":
        if weight is None:
            denom = _ops.sum(valid)
        else:
            onehot = _onehot(target, class_dim, input.ndim, n_classes, input.device, ignore_index)
            denom = _ops.sum(_pick(_ops.reshape(weight, wshape), onehot, class_dim))
        smooth = _ops.sum(smooth) / denom
    elif reduction == "sum":
        smooth = _ops.sum(smooth)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)



# ----------------------------------------------------------------------------- layers (registry ops)
# Convolution, pooling, normalisation, embedding, activations and the losses below are fused
# registry ops (tracegrad/ops/conv.py, pool.py, normalization.py, activation.py, loss_ops.py);
# these are their torch.nn.functional signatures.
from ..ops import activation as _act  # noqa: E402
from ..ops import conv as _conv  # noqa: E402
from ..ops import loss_ops as _loss  # noqa: E402
from ..ops import normalization as _norm  # noqa: E402
from ..ops import pool as _pool  # noqa: E402
from .._grad_mode import no_grad as _no_grad  # noqa: E402
from ..ops._registry import apply_inplace as _apply_inplace  # noqa: E402

__all__ += ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
            "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices", "avg_pool1d",
            "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "pad", "batch_norm",
            "layer_norm", "group_norm", "embedding", "one_hot", "dropout", "gelu", "silu",
            "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "softplus", "hardtanh",
            "hardtanh_", "relu6", "binary_cross_entropy", "binary_cross_entropy_with_logits",
            "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "scaled_dot_product_attention"]

conv1d, conv2d = _conv.conv1d, _conv.conv2d
conv_transpose1d, conv_transpose2d = _conv.conv_transpose1d, _conv.conv_transpose2d
max_pool1d, max_pool2d = _pool.max_pool1d, _pool.max_pool2d
max_pool1d_with_indices = _pool.max_pool1d_with_indices
max_pool2d_with_indices = _pool.max_pool2d_with_indices
avg_pool1d, avg_pool2d = _pool.avg_pool1d, _pool.avg_pool2d
adaptive_avg_pool1d, adaptive_avg_pool2d = _pool.adaptive_avg_pool1d, _pool.adaptive_avg_pool2d
pad = _pool.pad


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,  # noqa: A002
               momentum=0.1, eps=1e-5):
    """Batch normalisation over dim 1 (``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)``...). In
    training the batch statistics normalise and, when given, ``running_mean``/``running_var``
    are updated in place: ``(1 - momentum) * running + momentum * batch`` (the variance
    unbiased), as PyTorch; otherwise the running statistics normalise."""
    if input.ndim < 2:
        raise ValueError(f"expected 2D or more input (got {input.ndim}D input)")
    c = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and t.numel() != c:
            raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")
    if training:
        n = input.numel() // c
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {input.shape}")
        out = _norm.batch_norm_op(input, weight, bias, None, None, training=True, eps=eps)
        if running_mean is not None or running_var is not None:
            axes = (0,) + tuple(range(2, input.ndim))
            with _no_grad():
                x = input.detach()
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(_ops.mean(x, axes) * momentum)
                if running_var is not None:
                    v = _ops.var(x, axes, correction=1)
                    running_var.mul_(1 - momentum).add_(v * momentum)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    return _norm.batch_norm_op(input, weight, bias, running_mean, running_var, training=False,
                               eps=eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise over the last ``len(normalized_shape)`` dims (one fused op)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    nd = len(normalized_shape)
    if tuple(input.shape[input.ndim - nd:]) != normalized_shape or nd > input.ndim:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with "
                           f"shape [*, {', '.join(map(str, normalized_shape))}], but got input of "
                           f"size{list(input.shape)}")
    return _norm.layer_norm_op(input, weight, bias, nd=nd, eps=eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise over groups of channels (dim 1 split into ``num_groups``)."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    c = input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and num_groups="
                           f"{num_groups}")
    return _norm.group_norm_op(input, weight, bias, groups=num_groups, eps=eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,  # noqa: A002
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` at the indices ``input``; the row ``padding_idx`` gets no gradient."""
    if input.dtype.category != 1:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"{input.dtype.name} instead (while checking arguments for embedding)")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    _check_indices(input, n)
    return _loss.embedding_op(weight, input, padding_idx=padding_idx)


def one_hot(tensor, num_classes=-1):
    """``(..., num_classes)`` int64 one-hot rows (``num_classes=-1``: ``max + 1``)."""
    if tensor.dtype is not _D.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        num_classes = int(tensor._concrete("one_hot with num_classes=-1").max()) + 1
    else:
        _check_indices(tensor, num_classes, "Class values must be smaller than num_classes.")
    return _loss.one_hot_op(tensor, num_classes=num_classes)


from .. import _dtype as _D  # noqa: E402


def _check_indices(target, n, msg=None):
    """PyTorch's error for an index outside ``[0, n)`` (read on the host; skipped while
    tracing, where there are no values)."""
    if STATE.tracer is not None:
        return
    try:
        t = np.asarray(target._data.value)
    except Exception:  # noqa: BLE001 - an abstract value: nothing to check
        return
    if ((t < 0) | (t >= n)).any():
        if msg is not None:
            raise RuntimeError(msg)
        raise IndexError("index out of range in self")


def dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, as
    PyTorch: ``input * (empty_like(input).bernoulli_(1 - p) / (1 - p))`` (grad_fn
    ``MulBackward0``), the mask drawn from the generator."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    with _no_grad():
        noise = C.empty_like(input).bernoulli_(1 - p)  # PyTorch's CPU dropout: the same mask
        noise = noise / (1 - p)
    return input.mul_(noise) if inplace else input * noise


gelu = _act.gelu
silu = _act.silu
softplus = _act.softplus


def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    if inplace:
        return _apply_inplace(_act.leaky_relu.op, input, negative_slope=negative_slope)
    return _act.leaky_relu(input, negative_slope)


def leaky_relu_(input, negative_slope=0.01):  # noqa: A002
    return leaky_relu(input, negative_slope, True)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002
    if inplace:
        return _apply_inplace(_act.elu.op, input, alpha=alpha, scale=1.0, input_scale=1.0)
    return _act.elu(input, alpha)


def elu_(input, alpha=1.0):  # noqa: A002
    return elu(input, alpha, True)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input, inplace=False):  # noqa: A002
    if inplace:
        return _apply_inplace(_act.elu.op, input, alpha=_SELU_ALPHA, scale=_SELU_SCALE,
                              input_scale=1.0)
    return _act.elu(input, _SELU_ALPHA, _SELU_SCALE)


def celu(input, alpha=1.0, inplace=False):  # noqa: A002
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _act.elu(input, alpha, 1.0, 1.0 / alpha)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):  # noqa: A002
    if inplace:
        return _apply_inplace(_act.hardtanh.op, input, min_val=min_val, max_val=max_val)
    return _act.hardtanh(input, min_val, max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):  # noqa: A002
    return hardtanh(input, min_val, max_val, True)


def relu6(input, inplace=False):  # noqa: A002
    return hardtanh(input, 0.0, 6.0, inplace)


def _check_same_size(input, target, name):  # noqa: A002
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         f"size.")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                         reduction="mean"):
    """``-w * (t log x + (1 - t) log(1 - x))`` (each log clamped at -100), reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_same_size(input, target, "binary_cross_entropy")
    if weight is not None:
        weight = _ops.expand(weight, input.shape)
    return _loss.binary_cross_entropy_op(input, target, weight, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,  # noqa: A002
                                     reduce=None, reduction="mean", pos_weight=None):
    """``sigmoid`` + binary cross-entropy in one stable op, with ``weight`` and the positive
    class weight ``pos_weight`` (broadcast along the last dim)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_same_size(input, target, "binary_cross_entropy_with_logits")
    return _loss.bce_with_logits_op(input, target, weight, pos_weight, reduction=reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):  # noqa: A002
    """``|input - target|``, reduced (composite, as in PyTorch: grad_fn ``MeanBackward0``)."""
    reduction = _reduction(size_average, reduce, reduction)
    loss = _ops.abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):  # noqa: A002
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return l1_loss(input, target, reduction=reduction)
    return _loss.smooth_l1_op(input, target, reduction=reduction, beta=float(beta))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):  # noqa: A002
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    reduction = _reduction(None, None, reduction)
    if weight is not None:
        return _reduce(_loss.huber_op(input, target, reduction="none", delta=float(delta))
                       * weight, reduction)
    return _loss.huber_op(input, target, reduction=reduction, delta=float(delta))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):  # noqa: A002
    """``target * (log target - input)`` (``xlogy``: 0 where target is 0), or with
    ``log_target`` ``exp(target) * (target - input)``; ``'batchmean'`` divides the sum by the
    batch size."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    if log_target:
        loss = _ops.exp(target) * (target - input)
    else:
        pos = target > 0
        loss = _ops.where(pos, target * _ops.log(_ops.where(pos, target, 1.0)), 0.0) \
            - target * input
    if reduction == "batchmean":
        return _ops.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """``softmax(q k^T * scale + mask) v`` over the last two dims (``scale`` defaults to
    ``1 / sqrt(E)``); a bool ``attn_mask`` keeps where True, a float one is added; ``is_causal``
    masks the upper triangle. Composed from tracegrad ops (matmul, softmax, where), so it
    differentiates to any order and compiles to one fused program."""
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    s = 1.0 / (E ** 0.5) if scale is None else scale
    attn = _ops.matmul(query, _ops.transpose(key, -2, -1)) * s
    if is_causal:
        attn_mask = C.tensor(np.tril(np.ones((L, S), dtype=bool)), device=query.device)
    if attn_mask is not None:
        if attn_mask.dtype is _D.bool:
            attn = _ops.where(attn_mask, attn, float("-inf"))
        else:
            attn = attn + attn_mask
    attn = _ops.softmax(attn, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return _ops.matmul(attn, value)
