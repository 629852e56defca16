"""Shape ops: reshape/view, transpose/permute, (un)squeeze, expand, flatten, cat, stack,
split, dtype/device conversion, clone; and ``sum_to_size``, which undoes broadcasting."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .. import _dtype as D
from ._registry import Op, Sample, apply, register
from .indexing import getitem


def _public(op, fn):
    fn.op = op
    op.public = fn
    return fn


from .._tensor import _wrap_dim as _dims  # noqa: E402  (one dim-wrapping rule for all)


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


def reshape(input, *shape):
    """``input`` with a new shape (one dim may be -1), as ``torch.reshape`` / ``Tensor.view``."""
    return apply(_reshape, input, shape=_infer_shape(_size_args(shape), input.numel()))


_public(_reshape, reshape)
view = reshape


def view_as(input, other):
    return reshape(input, other.shape)


reshape_as = view_as


def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = _dims(start_dim, nd), _dims(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shp = tuple(input.shape)
    return reshape(input, shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])


def unflatten(input, dim, sizes):
    shp = tuple(input.shape)
    d = _dims(dim, len(shp))
    return reshape(input, shp[:d] + tuple(sizes) + shp[d + 1:])


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
    dims = tuple(_dims(d, nd) for d in _size_args(dims))
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}"
                           if len(dims) != nd else f"permute(): duplicate dims are not allowed: {dims}")
    return apply(_permute, input, dims=dims)


_public(_permute, permute)

_transpose = register(Op("transpose", lambda x, *, dim0, dim1: jnp.swapaxes(x, dim0, dim1),
                         grad_name="TransposeBackward0",
                         vjp=lambda g, x, *, out, dim0, dim1: transpose(g, dim0, dim1),
                         samples=[Sample((2, 3), dim0=0, dim1=1), Sample((2, 3, 4), dim0=-1, dim1=0)]))


def transpose(input, dim0, dim1):
    nd = input.ndim
    return apply(_transpose, input, dim0=_dims(dim0, nd), dim1=_dims(dim1, nd))


_public(_transpose, transpose)
swapaxes = transpose


def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def numpy_T(input):
    return permute(input, tuple(range(input.ndim))[::-1]) if input.ndim > 1 else input


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
    return apply(_unsqueeze, input, dim=_dims(dim, input.ndim + 1))


_public(_unsqueeze, unsqueeze)

_squeeze = register(Op("squeeze", lambda x, *, dims: jnp.squeeze(x, dims),
                       grad_name=lambda params, args: "SqueezeBackward1" if len(params["dims"]) == 1 else "SqueezeBackward0",
                       vjp=lambda g, x, *, out, dims: reshape(g, x.shape),
                       samples=[Sample((1, 3, 1), dim=(0, 2)), Sample((2, 1), dim=1)]))


def squeeze(input, dim=None):
    shp = tuple(input.shape)
    if dim is None:
        dims = tuple(i for i, s in enumerate(shp) if s == 1)
    else:
        dd = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = tuple(sorted({_dims(d, len(shp)) for d in dd}))
        dims = tuple(d for d in dims if len(shp) and shp[d] == 1)
    return apply(_squeeze, input, dims=dims)


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
    return apply(_expand, input, shape=tuple(out))


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
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def unbind(input, dim=0):
    d = _dims(dim, input.ndim)
    return tuple(getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


def split(tensor, split_size_or_sections, dim=0):
    d = _dims(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                               f"tensor's size at dimension {d}), but got split_sizes={sizes}")
    return tuple(_split_grad(tensor, sizes, d))


def chunk(input, chunks, dim=0):
    n = input.shape[_dims(dim, input.ndim)]
    return split(input, -(-n // chunks) if n else 1, dim)


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
