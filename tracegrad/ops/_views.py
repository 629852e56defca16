"""Views: PyTorch's layout arithmetic (sizes, strides, storage offset) for each view op, the
strided read/write ops that let a view see and change its base's storage, and ``make_view``,
which turns an op's output into a view of its input.

A view's value is computed once by its own op (``jnp.transpose``, a slice, ...); only after
the storage was rebound by an in-place op is it re-read, with ``as_strided`` (a gather, or a
slice when the view is one contiguous run). An in-place op through a view computes the view's
new value out of place and writes it into the base with ``copy_slices`` -- an op like any
other, so eager execution, autograd (its node is PyTorch's ``CopySlices``) and the compiler's
functionalised programs all see the same thing.
"""
from __future__ import annotations

import math
import sys

import jax
import numpy as np
import jax.numpy as jnp
from jax import lax

from .. import _tensor as _T
from .._state import STATE
from . import _registry
from ._registry import Op, Sample, _attach_node, _eager, apply, register

__all__ = ["make_view", "view_stride", "getitem_layout", "as_strided"]


# --------------------------------------------------------------------------- strided ops
def _runs(size, stride):
    """Whether a layout is one contiguous run of storage (read/written as a slice)."""
    return _T.is_contiguous_layout(size, stride)


def _index(size, stride, offset, n):
    dt = jnp.int32 if n < 2 ** 31 else jnp.int64
    idx = jnp.full(size, offset, dt)
    for k, st in enumerate(stride):
        if size[k] != 1 and st:
            idx = idx + lax.broadcasted_iota(dt, size, k) * st
    return idx


def _as_strided_impl(x, *, size, stride, offset):
    flat = x.reshape(-1)
    n = math.prod(size)
    if _runs(size, stride):
        return lax.slice(flat, (offset,), (offset + n,)).reshape(size)
    return flat[_index(size, stride, offset, flat.shape[0])]


def _scatter_impl(x, src, *, size, stride, offset):
    flat = x.reshape(-1)
    src = jnp.broadcast_to(jnp.asarray(src).astype(x.dtype), size).reshape(-1)
    if _runs(size, stride):
        flat = lax.dynamic_update_slice(flat, src, (offset,))
    else:
        flat = flat.at[_index(size, stride, offset, flat.shape[0]).reshape(-1)].set(src)
    return flat.reshape(x.shape)


def _strided_add_impl(g, *, shape, size, stride, offset):
    n = math.prod(shape)
    flat = jnp.zeros((n,), g.dtype)
    flat = flat.at[_index(size, stride, offset, n).reshape(-1)].add(g.reshape(-1))
    return flat.reshape(shape)


def _lay(p):
    return {"size": p["size"], "stride": p["stride"], "offset": p["offset"]}


_as_strided = register(Op(
    "as_strided", _as_strided_impl, grad_name="AsStridedBackward0",
    vjp=lambda g, x, *, out, size, stride, offset: apply(
        _strided_add, g, shape=tuple(x.shape), size=size, stride=stride, offset=offset),
    samples=[Sample((3, 4), call=lambda x: as_strided(x, (2, 2), (1, 4), 1)),
             Sample((6,), call=lambda x: as_strided(x, (2, 3), (0, 2), 0))]))

# as_strided's backward: the gradient scattered (added: views may overlap) into zeros
_strided_add = register(Op(
    "as_strided_backward", _strided_add_impl, grad_name="AsStridedBackwardBackward0",
    vjp=lambda gg, g, *, out, shape, size, stride, offset: apply(
        _as_strided, gg, size=size, stride=stride, offset=offset),
    samples=[Sample((2, 2), call=lambda g: apply(_strided_add, g, shape=(3, 4), size=(2, 2),
                                                 stride=(1, 4), offset=1))]))

# the base's new value after an in-place op through a view: PyTorch's CopySlices
_copy_slices = register(Op(
    "copy_slices", _scatter_impl, grad_name="CopySlices",
    vjp=(lambda g, x, src, *, out, size, stride, offset: apply(
             _copy_slices, g, 0.0, size=size, stride=stride, offset=offset),
         lambda g, x, src, *, out, size, stride, offset: apply(
             _as_strided, g, size=size, stride=stride, offset=offset)),
    samples=[Sample((3, 4), (2, 2), call=lambda x, v: apply(
        _copy_slices, x, v, size=(2, 2), stride=(1, 4), offset=1)),
             Sample((3, 4), (4,), call=lambda x, v: apply(
        _copy_slices, x, v, size=(4,), stride=(1,), offset=4))]))


def as_strided(input, size, stride, storage_offset=None):
    """A view of ``input``'s storage with the given sizes and strides (``torch.as_strided``)."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    off = input.storage_offset() if storage_offset is None else int(storage_offset)
    d = input._data
    st = d.storage if d.__class__ is _T._ViewData else d
    n = math.prod(st.value.shape)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape")
    if math.prod(size) and off + sum((s - 1) * t for s, t in zip(size, stride)) >= n:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset "
                           f"{off}, and itemsize {input.element_size()} requiring a storage size of "
                           f"{(off + sum((s - 1) * t for s, t in zip(size, stride)) + 1) * input.element_size()} "
                           f"are out of bounds for storage of size {n * input.element_size()}")
    # relative to the storage: the op reads the root array, the view is of ``input``'s base
    root = _root_tensor(d) if d.__class__ is _T._ViewData else input
    out = apply(_as_strided, root, size=size, stride=stride, offset=off)
    return make_view(out, input, (size, stride, off))


# --------------------------------------------------------------------------- reads and writes
def _read(v, size, stride, offset):
    if tuple(v.shape) == size and offset == 0 and _runs(size, stride):
        return v
    params = {"size": size, "stride": stride, "offset": offset}
    tr = STATE.tracer
    if tr is not None and not isinstance(v, jax.Array):
        return tr._call(_as_strided, [tr.value_of(None, v)], params)
    return _eager(_as_strided, [v], params, [None])


def _write(v, new, size, stride, offset):
    if tuple(v.shape) == size and offset == 0 and _runs(size, stride) and hasattr(new, "shape") \
            and tuple(new.shape) == size:
        return new
    params = {"size": size, "stride": stride, "offset": offset}
    tr = STATE.tracer
    if tr is not None and not (isinstance(v, jax.Array) and isinstance(new, jax.Array)):
        return tr._call(_copy_slices, [tr.value_of(None, v), tr.value_of(None, new)], params)
    return _eager(_copy_slices, [v, new], params, [None, None])


def base_layout(d, base):
    """The layout of view data ``d`` relative to its autograd ``base``'s own value (as
    ``copy_slices``/``as_strided`` on the base take it): the view's storage positions found
    among the base's (a detached view a view was taken of need not be contiguous)."""
    bd = base._data
    if bd.__class__ is not _T._ViewData:
        return d.size, d.stride, d.offset
    if _T.is_contiguous_layout(bd.size, bd.stride):
        return d.size, d.stride, d.offset - bd.offset
    flat = _storage_index(bd.size, bd.stride, bd.offset).ravel()
    order = np.argsort(flat, kind="stable")
    want = _storage_index(d.size, d.stride, d.offset)
    pos = order[np.searchsorted(flat[order], want)]
    off = int(pos.ravel()[0]) if pos.size else 0
    stride = tuple(int(np.take(pos, 1, axis=k).ravel()[0] - off) if n > 1 else 0
                   for k, n in enumerate(d.size))
    if pos.size and not np.array_equal(pos, _storage_index(d.size, stride, off)):
        raise RuntimeError(
            "tracegrad: an in-place operation that autograd records, through a view that is "
            "not strided relative to the detached tensor it was taken of, is not supported; "
            "call .contiguous() on the detached tensor first")
    return d.size, stride, off


def _storage_index(size, stride, offset):
    idx = np.full(size, offset, np.int64)
    for k, st in enumerate(stride):
        shape = [1] * len(size)
        shape[k] = size[k]
        idx = idx + np.arange(size[k]).reshape(shape) * st
    return idx


def _regen(view, base):
    """A view's grad_fn after its base changed in place: ``AsStridedBackward0`` of the base."""
    size, stride, offset = base_layout(view._data, base)
    _attach_node(_as_strided, (base,), {"size": size, "stride": stride, "offset": offset},
                 view, [True])
    view._output_nr = 0


_T.VIEW_FNS = (_read, _write, _regen)
_registry._VIEWS = sys.modules[__name__]


def _root_tensor(d):
    """A tensor whose ``_data`` is the root storage of view data ``d`` (its base when the base
    owns the storage, else a fresh handle on it)."""
    b = d.base
    if b is not None and b._data is d.storage:
        return b
    t = _T.Tensor._make(None)
    t._data = d.storage
    return t


# --------------------------------------------------------------------------- making views
def make_view(out, input, lay, creation=None):
    """Make ``out`` (the result of a view op on ``input``) a view of ``input``'s storage with
    layout ``lay`` = (sizes, strides, storage offset), with PyTorch's autograd view facts."""
    d = input._data
    isview = d.__class__ is _T._ViewData
    st = d.storage if isview else d
    vc = d.vc if isview else d
    if input.__class__ is _T._ViewTensor:
        base = d.base
        if d.creation is not None:
            creation = d.creation  # PyTorch propagates a non-default CreationMeta
    else:
        base = input
    if not STATE.grad_enabled:
        creation = "no_grad"
        if input._rg:  # a view of a tensor that requires grad does too (a leaf), as PyTorch
            out._rg = True
    size, stride, offset = lay
    out._data = _T._ViewData(st, vc, tuple(size), tuple(stride), offset, base, creation,
                             st.value, out._data.value)
    out.__class__ = _T._ViewTensor
    return out


# --------------------------------------------------------------------------- layout arithmetic
def view_stride(oldshape, oldstride, newshape):
    """PyTorch's ``computeStride``: the strides of ``newshape`` viewing a tensor of
    ``oldshape``/``oldstride``, or None when no view can do it."""
    numel = math.prod(oldshape)
    if not oldshape:
        return (1,) * len(newshape)
    if numel == 0 and tuple(oldshape) == tuple(newshape):
        return tuple(oldstride)
    newstride = [0] * len(newshape)
    if numel == 0:
        for d in range(len(newshape) - 1, -1, -1):
            newstride[d] = 1 if d == len(newshape) - 1 else max(newshape[d + 1], 1) * newstride[d + 1]
        return tuple(newstride)
    view_d = len(newshape) - 1
    chunk = oldstride[-1]
    tensor_numel = view_numel = 1
    for td in range(len(oldshape) - 1, -1, -1):
        tensor_numel *= oldshape[td]
        if td == 0 or (oldshape[td - 1] != 1 and oldstride[td - 1] != tensor_numel * chunk):
            while view_d >= 0 and (view_numel < tensor_numel or newshape[view_d] == 1):
                newstride[view_d] = view_numel * chunk
                view_numel *= newshape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if td > 0:
                chunk = oldstride[td - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(newstride)


def getitem_layout(lay, spec):
    """The layout of ``x[index]`` for a basic index (ints, slices, None) as a spec."""
    size, stride, off = list(lay[0]), list(lay[1]), lay[2]
    p = 0
    for it in spec:
        kind = it[0]
        if kind == "i":
            k = it[1] + size[p] if it[1] < 0 else it[1]
            off += k * stride[p]
            del size[p], stride[p]
        elif kind == "s":
            start, stop, step = slice(it[1], it[2], it[3]).indices(size[p])
            n = len(range(start, stop, step))
            off += start * stride[p]
            size[p], stride[p] = n, stride[p] * step
            p += 1
        else:  # None: unsqueeze at p
            st = size[p] * stride[p] if p < len(size) else 1
            size.insert(p, 1)
            stride.insert(p, st)
            p += 1
    return tuple(size), tuple(stride), off


def permute_layout(lay, dims):
    return tuple(lay[0][d] for d in dims), tuple(lay[1][d] for d in dims), lay[2]


def unsqueeze_layout(lay, dim):
    size, stride = list(lay[0]), list(lay[1])
    st = size[dim] * stride[dim] if dim < len(size) else 1
    size.insert(dim, 1)
    stride.insert(dim, st)
    return tuple(size), tuple(stride), lay[2]


def squeeze_layout(lay, dims):
    keep = [i for i in range(len(lay[0])) if i not in dims]
    return tuple(lay[0][i] for i in keep), tuple(lay[1][i] for i in keep), lay[2]


def expand_layout(lay, shape):
    size, stride = lay[0], lay[1]
    lead = len(shape) - len(size)
    st = [0] * lead + [0 if size[i] == 1 and shape[lead + i] != 1 else stride[i]
                       for i in range(len(size))]
    return tuple(shape), tuple(st), lay[2]


def diagonal_layout(lay, offset, d1, d2):
    size, stride, off = lay
    if offset >= 0:
        n = max(min(size[d1], size[d2] - offset), 0)
        if n:
            off += offset * stride[d2]
    else:
        n = max(min(size[d1] + offset, size[d2]), 0)
        if n:
            off -= offset * stride[d1]
    keep = [i for i in range(len(size)) if i not in (d1, d2)]
    return (tuple(size[i] for i in keep) + (n,),
            tuple(stride[i] for i in keep) + (stride[d1] + stride[d2],), off)
