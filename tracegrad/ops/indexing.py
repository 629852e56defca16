"""Indexing: ``x[idx]`` (ints, slices, None, Ellipsis, integer tensors, boolean masks) with
scatter-add gradients, ``x[idx] = v`` (CopySlices), ``nonzero``, ``index_select``, ``gather``.

An index is normalised once into a hashable ``spec`` (a tuple of items) plus the index tensors,
which become op inputs; the same spec drives the forward, the gradient and the compiler.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import _dtype as D
from .._creation import arange, tensor as _tensor
from .._tensor import Tensor, _wrap_dim as _dims, layout
from ._registry import Const, Op, Sample, apply, apply_inplace, register
from ._views import getitem_layout, make_view

__all__ = ["gather", "getitem", "index_select", "nonzero", "setitem"]

# spec items: ("i", k) int, ("s", start, stop, step), ("n",) None, ("t", j) j-th index tensor


def _build(spec, idx):
    out = []
    for it in spec:
        kind = it[0]
        if kind == "i":
            out.append(it[1])
        elif kind == "s":
            out.append(slice(it[1], it[2], it[3]))
        elif kind == "n":
            out.append(None)
        else:
            out.append(idx[it[1]])
    return tuple(out)


def _normalize(x, index):
    """(spec, index tensors) for ``x[index]``, with PyTorch's errors for bad indices."""
    if not isinstance(index, tuple):
        index = (index,)
    conv = []
    for it in index:
        if isinstance(it, (list, np.ndarray)):
            it = _tensor(it)
            if it.dtype.category == D.FLOATING:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        elif isinstance(it, bool):
            raise IndexError("indexing with a Python bool is not supported; use a bool tensor")
        conv.append(it)
    consumed = sum(1 if not isinstance(it, Tensor) or it.dtype is not D.bool else it.ndim
                   for it in conv if it is not None and it is not Ellipsis)
    nd = x.ndim
    if sum(it is Ellipsis for it in conv) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    spec, tensors, dim = [], [], 0
    shape = tuple(x.shape)
    for it in conv:
        if it is Ellipsis:
            for _ in range(nd - consumed):
                spec.append(("s", None, None, None))
                dim += 1
        elif it is None:
            spec.append(("n",))
        elif isinstance(it, slice):
            if it.step is not None and it.step <= 0:
                raise ValueError("step must be greater than zero")
            spec.append(("s", _int(it.start), _int(it.stop), _int(it.step)))
            dim += 1
        elif isinstance(it, Tensor):
            if it.dtype is D.bool:
                for k, nz in enumerate(_mask_to_indices(it, shape[dim:dim + it.ndim], dim)):
                    spec.append(("t", len(tensors)))
                    tensors.append(nz)
                dim += it.ndim
            elif it.dtype.category == D.INTEGRAL:
                _check_bounds(it, shape[dim], dim)
                spec.append(("t", len(tensors)))
                tensors.append(it)
                dim += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        else:
            try:
                k = int(it.__index__())
            except (AttributeError, TypeError):
                raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or "
                                 f"byte Variables are valid indices (got {type(it).__name__})") from None
            if not -shape[dim] <= k < shape[dim]:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {shape[dim]}")
            spec.append(("i", k))
            dim += 1
    return tuple(spec), tensors


def _int(v):
    return None if v is None else int(v.__index__())


def _mask_to_indices(mask, shape, dim):
    if tuple(mask.shape) != tuple(shape):
        raise IndexError(f"The shape of the mask {list(mask.shape)} at index {dim} does not match "
                         f"the shape of the indexed tensor {list(shape)} at index {dim}")
    m = mask._concrete("boolean-mask indexing (its result shape depends on the mask's values)")
    return [Tensor._make(jnp.asarray(a, jnp.int64), mask.device) for a in np.nonzero(np.asarray(m))]


def _check_bounds(t, size, dim):
    v = t._data.value
    if not hasattr(v, "__array__"):  # an IR Value while tracing: its values are unknown
        return
    try:
        v = np.asarray(v)
    except Exception:  # traced: checked by the compiler's runtime instead
        return
    if v.size and (v.max() >= size or v.min() < -size):
        bad = v.max() if v.max() >= size else v.min()
        raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {size}")


_BASIC_NAMES = {"i": "SelectBackward0", "s": "SliceBackward0", "n": "UnsqueezeBackward0"}


def _getitem_name(params, args):
    # PyTorch applies a basic index one item at a time: the node is the last one's
    spec = params["spec"]
    if any(it[0] == "t" for it in spec):
        return "IndexBackward0"
    for it in reversed(spec):
        if it != _FULL:
            return _BASIC_NAMES[it[0]]
    return "SliceBackward0"


_FULL = ("s", None, None, None)


_getitem = register(Op(
    "getitem", lambda x, *idx, spec: x[_build(spec, idx)], grad_name=_getitem_name,
    vjp_all=lambda g, x, *idx, out, spec: (index_backward(g, *idx, shape=x.shape, spec=spec),),
    samples=[Sample((4, 3), call=lambda x: x[1]), Sample((4, 3), call=lambda x: x[1:3, ::2]),
             Sample((4, 3), call=lambda x: x[..., None, 0]),
             Sample((4, 3), call=lambda x: x[[0, 2, 0]]),
             Sample((4, 3), call=lambda x: x[[1, 1], [0, 2]]),
             Sample((4, 3), call=lambda x: x[x.detach() > 0])]))


def getitem(x, index):
    """``x[index]``: a view of ``x`` for a basic index (ints, slices, None, ...), a copy
    (PyTorch's advanced indexing) when an index is a tensor, a list or a mask."""
    spec, tensors = _normalize(x, index)
    out = apply(_getitem, x, *tensors, spec=spec)
    if tensors:
        return out
    return make_view(out, x, getitem_layout(layout(x), spec))


_getitem.public = getitem

_index_backward = register(Op(
    "index_backward",
    lambda g, *idx, shape, spec: jnp.zeros(shape, g.dtype).at[_build(spec, idx)].add(g),
    grad_name="IndexBackwardBackward0",
    vjp_all=lambda gg, g, *idx, out, shape, spec: (apply(_getitem, gg, *idx, spec=spec),),
    samples=[Sample((3, 2), Const([0, 2, 0]),  # a repeated index: its gradients add up
                    call=lambda g, i: index_backward(g, i, shape=(4, 2), spec=(("t", 0),))),
             Sample((4,), call=lambda g: index_backward(  # g of x[:, 1]
                 g, shape=(4, 2), spec=(("s", None, None, None), ("i", 1))))]))


def index_backward(g, *idx, shape, spec):
    return apply(_index_backward, g, *idx, shape=tuple(shape), spec=spec)


def _put_impl(x, v, *idx, spec):
    v = v.astype(x.dtype) if hasattr(v, "astype") else v
    return x.at[_build(spec, idx)].set(v)


_index_put = register(Op(
    "index_put", _put_impl, grad_name="CopySlices",
    vjp_all=lambda g, x, v, *idx, out, spec: (
        apply(_index_put, g, 0.0, *idx, spec=spec), apply(_getitem, g, *idx, spec=spec)),
    samples=[Sample((4, 3), (3,), call=lambda x, v: _setitem_copy(x, 1, v)),
             Sample((4, 3), (2, 1), call=lambda x, v: _setitem_copy(x, slice(0, 2), v)),
             Sample((4, 3), Const(0.5), call=lambda x, v: _setitem_copy(x, [0, 3], v))]))


def _setitem_copy(x, index, v):
    y = x * 1  # a non-leaf copy, so the in-place write is allowed and differentiable
    y[index] = v
    return y


def setitem(x, index, value):
    """``x[index] = value``: an in-place write (version bump, CopySlices grad_fn)."""
    spec, tensors = _normalize(x, index)
    apply_inplace(_index_put, x, value, *tensors, spec=spec)


_index_put.public = setitem

_nonzero = register(Op("nonzero", lambda x: jnp.stack(jnp.nonzero(x), axis=1).astype(jnp.int64)))


def nonzero(input, *, as_tuple=False):
    v = np.asarray(input._concrete("nonzero() (its result shape depends on the values)"))
    nz = np.nonzero(v)
    if as_tuple:
        return tuple(Tensor._make(jnp.asarray(a, jnp.int64), input.device) for a in nz)
    return Tensor._make(jnp.asarray(np.stack(nz, axis=1), jnp.int64), input.device)


def index_select(input, dim, index):
    d = _dims(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


def gather(input, dim, index):
    """``out[i][j] = input[index[i][j]][j]`` (dim=0) etc., as ``torch.gather``."""
    d = _dims(dim, input.ndim)
    idx = []
    for k in range(input.ndim):
        if k == d:
            idx.append(index)
        else:
            shape = [1] * index.ndim
            shape[k] = index.shape[k]
            idx.append(arange(index.shape[k], device=input.device).reshape(shape))
    return getitem(input, tuple(idx))
