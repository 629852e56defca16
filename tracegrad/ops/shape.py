"""Shape ops: reshape/view, transpose/permute, (un)squeeze, expand, flatten, diagonal, cat,
stack, split, dtype/device conversion, clone; and ``sum_to_size``, which undoes broadcasting.

The view ops among them return views of their input (``_views.make_view``): the op computes
the value, and the result shares the input's storage and version counter with PyTorch's
strides, so an in-place change through either is seen by both."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .. import _dtype as D
from .._tensor import contiguous_strides, layout
from ._registry import Op, Sample, apply, register
from ._views import (_strided_add, diagonal_layout, expand_layout, make_view, permute_layout,
                     squeeze_layout, unsqueeze_layout, view_stride)
from .indexing import getitem


def _public(op, fn):
    fn.op = op
    op.public = fn
    return fn


from .._tensor import _wrap_dim as _dims  # noqa: E402  (one dim-wrapping rule for all)

__all__ = ["broadcast_shapes", "broadcast_tensors", "broadcast_to", "cat", "chunk", "clone",
           "concat", "concatenate", "convert", "expand", "expand_as", "flatten", "mT",
           "narrow", "numpy_T", "permute", "reshape", "reshape_as", "split", "squeeze",
           "stack", "sum_to_size", "swapaxes", "t", "to_device", "transpose", "unbind",
           "unflatten", "unsqueeze", "view", "view_as"]


def _size_args(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


# --------------------------------------------------------------------------- sum_to_size
def _sum_to_impl(x, *, shape):
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and x.shape[lead + i] != 1)
    if axes:
        x = jnp.sum(x, axis=axes, keepdims=True)
    return x.reshape(shape) if lead else x


_sum_to = register(Op("sum_to_size", _sum_to_impl, grad_name="SumToSizeBackward0",
                      vjp=lambda g, x, *, out, shape: expand(g, x.shape),
                      samples=[Sample((2, 3), call=lambda x: x.sum_to_size(3)),
                               Sample((2, 3), call=lambda x: x.sum_to_size(2, 1)),
                               Sample((4, 2, 3), call=lambda x: x.sum_to_size(1, 3))]))


def sum_to_size(input, *size):
    shape = _size_args(size)
    if tuple(input.shape) == shape:
        return input
    return apply(_sum_to, input, shape=shape)


_public(_sum_to, sum_to_size)

# --------------------------------------------------------------------------- reshape / view
_reshape = register(Op("reshape", lambda x, *, shape: jnp.reshape(x, shape), grad_name="ViewBackward0",
                       vjp=lambda g, x, *, out, shape: reshape(g, x.shape),
                       samples=[Sample((2, 3), call=lambda x: x.reshape(3, 2)),
                                Sample((2, 3), call=lambda x: x.reshape(-1)),
                                Sample((6,), call=lambda x: x.reshape(2, -1, 1)),
                                Sample((), call=lambda x: x.reshape(1))]))


def _infer_shape(shape, numel):
    shape = list(shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape[shape.index(-1)] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


# reshape's copy when no view can do it (PyTorch: _unsafe_view of a contiguous clone)
_unsafe_view = register(Op("unsafe_view", lambda x, *, shape: jnp.reshape(x, shape),
                           grad_name="UnsafeViewBackward0", aten="aten::_unsafe_view",
                           vjp=lambda g, x, *, out, shape: reshape(g, x.shape),
                           samples=[Sample((2, 3), call=lambda x: x.t().reshape(6))]))

_VIEW_SIZE_MSG = ("view size is not compatible with input tensor's size and stride (at least one "
                  "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")


def reshape(input, *shape):
    """``input`` with a new shape (one dim may be -1), as ``torch.reshape``: a view when the
    strides allow one, else a copy."""
    shape = _infer_shape(_size_args(shape), input.numel())
    size, stride, offset = layout(input)
    st = view_stride(size, stride, shape)
    if st is None:
        return apply(_unsafe_view, clone(input), shape=shape)
    return make_view(apply(_reshape, input, shape=shape), input, (shape, st, offset))


_public(_reshape, reshape)


def view(input, *shape):
    """A view of ``input`` with a new shape (``Tensor.view``); raises PyTorch's error when the
    strides do not allow one (``reshape`` copies then)."""
    shape = _infer_shape(_size_args(shape), input.numel())
    size, stride, offset = layout(input)
    st = view_stride(size, stride, shape)
    if st is None:
        raise RuntimeError(_VIEW_SIZE_MSG)
    return make_view(apply(_reshape, input, shape=shape), input, (shape, st, offset))


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    """As ``torch.flatten``: ``input`` itself when there is nothing to merge."""
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = _dims(start_dim, nd), _dims(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    shp = tuple(input.shape)
    return reshape(input, shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])


def unflatten(input, dim, sizes):
    shp = tuple(input.shape)
    d = _dims(dim, len(shp))
    return view(input, shp[:d] + tuple(sizes) + shp[d + 1:])


# --------------------------------------------------------------------------- transpose / permute
_permute = register(Op("permute", lambda x, *, dims: jnp.transpose(x, dims), grad_name="PermuteBackward0",
                       vjp=lambda g, x, *, out, dims: permute(g, _inverse(dims)),
                       samples=[Sample((2, 3, 4), call=lambda x: x.permute(2, 0, 1)),
                                Sample((2, 3), call=lambda x: x.permute(1, 0))]))


def _inverse(dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


def permute(input, *dims):
    nd = input.ndim
    dims = _size_args(dims)
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    dims = tuple(_dims(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return make_view(apply(_permute, input, dims=dims), input, permute_layout(layout(input), dims))


_public(_permute, permute)

_transpose = register(Op("transpose", lambda x, *, dim0, dim1: jnp.swapaxes(x, dim0, dim1) if x.ndim else x,
                         grad_name="TransposeBackward0",
                         vjp=lambda g, x, *, out, dim0, dim1: transpose(g, dim0, dim1),
                         samples=[Sample((2, 3), dim0=0, dim1=1), Sample((2, 3, 4), dim0=-1, dim1=0)]))


def _swap_layout(lay, d0, d1):
    if not lay[0]:
        return lay
    dims = list(range(len(lay[0])))
    dims[d0], dims[d1] = d1, d0
    return permute_layout(lay, dims)


def transpose(input, dim0, dim1):
    nd = input.ndim
    d0, d1 = _dims(dim0, nd), _dims(dim1, nd)
    return make_view(apply(_transpose, input, dim0=d0, dim1=d1), input,
                     _swap_layout(layout(input), d0, d1))


_public(_transpose, transpose)
swapaxes = transpose

_t = register(Op("t", lambda x: x.T, grad_name="TBackward0", vjp=lambda g, x, *, out: t(g),
                 samples=[Sample((2, 3)), Sample((3,)), Sample(())]))


def t(input):
    """The transpose of a matrix (a 0-d or 1-d tensor as it is), as ``torch.t``: a view."""
    nd = input.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    lay = layout(input)
    return make_view(apply(_t, input), input, _swap_layout(lay, 0, 1) if nd == 2 else lay)


_public(_t, t)


def numpy_T(input):
    return permute(input, tuple(range(input.ndim))[::-1])


def mT(input):
    if input.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {input.ndim}-D tensor.")
    return transpose(input, -2, -1)


# --------------------------------------------------------------------------- (un)squeeze
_unsqueeze = register(Op("unsqueeze", lambda x, *, dim: jnp.expand_dims(x, dim),
                         vjp=lambda g, x, *, out, dim: reshape(g, x.shape),
                         samples=[Sample((3,), dim=0), Sample((2, 3), dim=-1)]))


def unsqueeze(input, dim):
    d = _dims(dim, input.ndim + 1)
    return make_view(apply(_unsqueeze, input, dim=d), input, unsqueeze_layout(layout(input), d))


_public(_unsqueeze, unsqueeze)

# PyTorch names the three overloads: squeeze() 0, squeeze(int) 1, squeeze(tuple) 2
_squeeze = register(Op("squeeze", lambda x, *, dims, form: jnp.squeeze(x, dims),
                       grad_name=lambda params, args: f"SqueezeBackward{params['form']}",
                       vjp=lambda g, x, *, out, dims, form: reshape(g, x.shape),
                       samples=[Sample((1, 3, 1), call=lambda x: squeeze(x, (0, 2))),
                                Sample((2, 1), call=lambda x: squeeze(x, 1)),
                                Sample((1, 2, 1), call=lambda x: squeeze(x))]))


def squeeze(input, dim=None):
    shp = tuple(input.shape)
    if dim is None:
        dims = tuple(i for i, s in enumerate(shp) if s == 1)
    else:
        dd = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = tuple(sorted({_dims(d, len(shp)) for d in dd}))
        dims = tuple(d for d in dims if len(shp) and shp[d] == 1)
    form = 0 if dim is None else 2 if isinstance(dim, (tuple, list)) else 1
    return make_view(apply(_squeeze, input, dims=dims, form=form), input,
                     squeeze_layout(layout(input), dims))


_public(_squeeze, squeeze)

# --------------------------------------------------------------------------- expand
# The rule returns g in the expanded shape: OpNode's sum_to brings it back to x's shape.
_expand = register(Op("expand", lambda x, *, shape: jnp.broadcast_to(x, shape),
                      vjp=lambda g, x, *, out, shape: g,
                      samples=[Sample((3,), call=lambda x: x.expand(2, 3)),
                               Sample((2, 1), call=lambda x: x.expand(2, 4)),
                               Sample((), call=lambda x: x.expand(3))]))


def expand(input, *sizes):
    sizes = _size_args(sizes)
    shp = tuple(input.shape)
    if len(sizes) < len(shp):
        raise RuntimeError(f"expand({input.type()}{{{list(shp)}}}, size={list(sizes)}): the number "
                           f"of sizes provided ({len(sizes)}) must be greater or equal to the number "
                           f"of dimensions in the tensor ({len(shp)})")
    lead = len(sizes) - len(shp)
    out = []
    for i, s in enumerate(sizes):
        have = shp[i - lead] if i >= lead else None
        if s == -1:
            if have is None:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = have
        elif have is not None and have != 1 and have != s:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({have}) at non-singleton dimension {i}.  Target sizes: "
                               f"{list(sizes)}.  Tensor sizes: {list(shp)}")
        out.append(s)
    out = tuple(out)
    return make_view(apply(_expand, input, shape=out), input, expand_layout(layout(input), out))


_public(_expand, expand)


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, size):
    return expand(input, size)


def broadcast_shapes(*shapes):
    try:
        return tuple(jnp.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError as e:
        raise RuntimeError(f"shape mismatch: objects cannot be broadcast to a single shape ({e})") from None


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


# --------------------------------------------------------------------------- cat / stack / split
def _split_grad(g, sizes, dim):
    outs, start = [], 0
    for s in sizes:
        outs.append(narrow(g, dim, start, s))
        start += s
    return outs


_cat = register(Op("cat", lambda *xs, dim, sizes: jnp.concatenate(xs, axis=dim), promote="all",
                   vjp_all=lambda g, *xs, out, dim, sizes: _split_grad(g, sizes, dim),
                   samples=[Sample((2, 3), (4, 3), call=lambda *ts: cat(ts)),
                            Sample((2, 3), (2, 1), call=lambda *ts: cat(ts, dim=1))]))


def cat(tensors, dim=0):
    """Concatenate tensors along ``dim`` (as ``torch.cat``)."""
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    ref = tensors[0]
    d = _dims(dim, ref.ndim)
    for i, x in enumerate(tensors):
        if x.ndim != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} and "
                               f"{x.ndim} (tensor number {i} in the list)")
        for k, (a, b) in enumerate(zip(ref.shape, x.shape)):
            if k != d and a != b:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected "
                                   f"size {a} but got size {b} for tensor number {i} in the list.")
    return apply(_cat, *tensors, dim=d, sizes=tuple(x.shape[d] for x in tensors))


_public(_cat, cat)
concat = concatenate = cat

_stack = register(Op("stack", lambda *xs, dim: jnp.stack(xs, axis=dim), promote="all",
                     vjp_all=lambda g, *xs, out, dim: unbind(g, dim),
                     samples=[Sample((2, 3), (2, 3), call=lambda *ts: stack(ts)),
                              Sample((3,), (3,), (3,), call=lambda *ts: stack(ts, dim=1))]))


def stack(tensors, dim=0):
    """Stack same-shaped tensors along a new ``dim`` (as ``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, x in enumerate(tensors):
        if x.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(tensors[0].shape)} at entry 0 and {list(x.shape)} at entry {i}")
    return apply(_stack, *tensors, dim=_dims(dim, tensors[0].ndim + 1))


_public(_stack, stack)


def narrow(input, dim, start, length):
    d = _dims(dim, input.ndim)
    if start < 0:
        start += input.shape[d]
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def select(input, dim, index):
    d = _dims(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


def _multi(views, name):
    """Outputs of a multi-output view op (PyTorch's MULTI_OUTPUT_NODE views): named as its
    node, and refused for in-place changes that autograd would record."""
    for i, v in enumerate(views):
        d = v._data
        if d.creation is None:
            d.creation = f"multi:{i}"  # (the output number PyTorch's error names)
        if v.grad_fn is not None:
            v.grad_fn._named = name + "Backward0"
    return tuple(views)


def unbind(input, dim=0):
    d = _dims(dim, input.ndim)
    return _multi([getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d])], "Unbind")


def split(tensor, split_size_or_sections, dim=0):
    d = _dims(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
        name = "Split"
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                               f"tensor's size at dimension {d}), but got split_sizes={sizes}")
        name = "SplitWithSizes"
    return _multi(_split_grad(tensor, sizes, d), name)


def chunk(input, chunks, dim=0):
    n = input.shape[_dims(dim, input.ndim)]
    return split(input, -(-n // chunks) if n else 1, dim)


# --------------------------------------------------------------------------- diagonal
def _diag_grad(g, shape, offset, dim1, dim2):
    shape = tuple(shape)
    size, stride, off = diagonal_layout((shape, _contig(shape), 0), offset, dim1, dim2)
    return apply(_strided_add, g, shape=shape, size=size, stride=stride, offset=off)


def _contig(shape):
    return contiguous_strides(shape)


_diagonal = register(Op(
    "diagonal", lambda x, *, offset, dim1, dim2: jnp.diagonal(x, offset, dim1, dim2),
    vjp=lambda g, x, *, out, offset, dim1, dim2: _diag_grad(g, x.shape, offset, dim1, dim2),
    samples=[Sample((3, 4), call=lambda x: diagonal(x)), Sample((3, 4), call=lambda x: diagonal(x, 1)),
             Sample((2, 3, 4), call=lambda x: diagonal(x, -1, 2, 0))]))


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal (``offset`` above it when positive) over ``dim1``/``dim2``, as the last
    dim, as ``torch.diagonal``: a view."""
    nd = input.ndim
    d1, d2 = _dims(dim1, nd), _dims(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return make_view(apply(_diagonal, input, offset=int(offset), dim1=d1, dim2=d2), input,
                     diagonal_layout(layout(input), int(offset), d1, d2))


_public(_diagonal, diagonal)


# --------------------------------------------------------------------------- dtype / device / copies
_convert = register(Op("convert", lambda x, *, dtype: x.astype(dtype.np), grad_name="ToCopyBackward0",
                       vjp=lambda g, x, *, out, dtype: g.to(x.dtype),
                       samples=[Sample((3,), dtype=D.float32)], tol={"atol": 1e-5, "rtol": 1e-4, "eps": 1e-3}))


def convert(input, dtype):
    return apply(_convert, input, dtype=dtype)


_public(_convert, convert)


def _to_device_impl(x, *, device):
    return jax.device_put(x, device.jax_device())


_to_device = register(Op("to_device", _to_device_impl, grad_name="ToCopyBackward0",
                         eager_jit=False,  # a jitted device_put would leave the value in place
                         vjp=lambda g, x, *, out, device: g.to(x.device),
                         samples=[Sample((3,), call=lambda x: to_device(x, x.device))]))


def to_device(input, device):
    device.jax_device()  # raises PyTorch's error early when there is no such device
    out = apply(_to_device, input, device=device)
    out._device = device
    return out


_public(_to_device, to_device)

_clone = register(Op("clone", lambda x: jnp.array(x, copy=True), vjp=lambda g, x, *, out: g,
                     samples=[Sample((3,))]))


def clone(input, *, memory_format=None):
    return apply(_clone, input)


def contiguous(input, memory_format=None):
    """``input`` itself when contiguous, else a contiguous copy (``CloneBackward0``)."""
    return input if input.is_contiguous() else apply(_clone, input)


_public(_clone, clone)

# in-place targets (Tensor.copy_ / fill_ / zero_): out of place here, rebound by apply_inplace
_copy = register(Op("copy", lambda x, src: jnp.broadcast_to(src, x.shape).astype(x.dtype),
                    grad_name="CopyBackwards",
                    vjp=(lambda g, x, src, *, out: g * 0, lambda g, x, src, *, out: g),
                    samples=[Sample((2, 3), (3,), call=lambda x, src: (x * 1).copy_(src))]))
_fill = register(Op("fill", lambda x, value: jnp.full(x.shape, value, x.dtype),
                    grad_name="FillBackward0",
                    vjp=(lambda g, x, value, *, out: g * 0, None),
                    samples=[Sample((3,), call=lambda x: (x * 1).fill_(0.5))]))
