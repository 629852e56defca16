"""``tracegrad.nn.functional``: activations, ``linear`` and losses, composed from registry ops.

Every function here is a few tracegrad ops, so its gradient (and its second derivative, and
its compiled form) comes from the ops' own VJP rules; nothing here has a rule of its own.
``log_softmax`` is a registry op (computed stably by jax), so ``cross_entropy`` is stable.

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
from .. import ops as _ops
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
    loss = _ops.square(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _check_nll_shapes(input, target):  # noqa: A002
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        if target.ndim != 0:
            raise RuntimeError(f"0D or 1D target tensor expected, multi-target not supported "
                               f"(got target of shape {list(target.shape)} for input of shape "
                               f"{list(input.shape)})")
        return
    if target.ndim == 0 or input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 1}).")
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"size mismatch (got input: {list(input.shape)}, target: "
                           f"{list(target.shape)})")


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
    if target.dtype.category != 1:
        raise RuntimeError(f"expected scalar type Long but found "
                           f"{target.dtype.name.capitalize()}")
    _check_nll_shapes(input, target)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise RuntimeError(f"weight tensor should be defined either for all {n_classes} classes "
                           f"or no classes but got weight tensor of shape: {list(weight.shape)}")
    _check_targets(target, n_classes, ignore_index)
    onehot = _onehot(target, class_dim, input.ndim, n_classes, input.device, ignore_index)
    loss = _pick(-input, onehot, class_dim)
    if weight is not None:
        w = _pick(_ops.reshape(weight, _class_shape(input.ndim, class_dim, n_classes)), onehot,
                  class_dim)
        loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _ops.sum(loss)
    if weight is None:
        return _ops.sum(loss) / _ops.sum(target != ignore_index)
    return _ops.sum(loss) / _ops.sum(w)


def _class_shape(ndim, class_dim, n_classes):
    shape = [1] * ndim
    shape[class_dim] = n_classes
    return shape


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
    if target.dtype.category == 2:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected target size {list(input.shape)}, got "
                               f"{list(target.shape)}")
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

