"""Pooling and padding: ``max_pool2d`` (with indices), ``avg_pool2d``, ``adaptive_avg_pool2d``
and ``pad`` (constant, reflect, replicate), each a registered op with PyTorch's grad_fn
(``MaxPool2DWithIndicesBackward0``, ``AvgPool2DBackward0``, ...); the 1-D forms run the 2-D op
on an unsqueezed input, as PyTorch does (so their grad_fn is ``SqueezeBackward1`` there too).

Max pooling gathers each window (``x[..., index]``, the window positions worked out once per
shape in numpy) and takes its max: the first maximum of a window wins, as in PyTorch's kernel
(ties are common after a ReLU), and NaN propagates. Its gradient is a scatter-add of ``g`` at
the winning positions; that scatter and the gather of ``g`` at them are a linear pair
(``_linear.linear_pair``), so max pooling differentiates to any order. Average pooling,
adaptive average pooling and padding are linear, and their pair is their own transpose.
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from ._linear import linear_pair
from .._errors import SCALAR_TYPE_NAME as _SCALAR_NAME
from ._registry import Const, Op, Sample, register

__all__ = ["max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "pad"]


def _out_size(L, k, s, p, d, ceil):  # noqa: N803 - PyTorch's pooling_output_shape
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= L + p:
        out -= 1
    return out


@functools.lru_cache(maxsize=256)
def _window_index(H, W, kernel, stride, padding, dilation, ceil_mode):  # noqa: N803
    """``(Oh, Ow, kh*kw)`` flat positions ``h * W + w`` of each window's elements (``H * W``,
    one past the end, for positions in the padding)."""
    ph = _positions(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    pw = _positions(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    vh = (ph >= 0) & (ph < H)
    vw = (pw >= 0) & (pw < W)
    flat = ph[:, None, :, None] * W + pw[None, :, None, :]
    valid = vh[:, None, :, None] & vw[None, :, None, :]
    flat = np.where(valid, flat, H * W)
    return flat.reshape(flat.shape[0], flat.shape[1], -1)


def _positions(L, k, s, p, d, ceil):  # noqa: N803
    o = _out_size(L, k, s, p, d, ceil)
    return np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d


def _patches(x, params):
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    idx = _window_index(h, w, **params)
    fill = jnp.full(lead + (1,), -jnp.inf, x.dtype)
    xf = jnp.concatenate([x.reshape(lead + (h * w,)), fill], axis=-1)
    return xf[..., idx], idx  # (*lead, Oh, Ow, K)


def _max_pool_impl(x, **params):
    return jnp.max(_patches(x, params)[0], axis=-1)


def _max_pool_indices_impl(x, **params):
    p, idx = _patches(x, params)
    a = jnp.argmax(p, axis=-1)
    return jnp.take_along_axis(jnp.broadcast_to(jnp.asarray(idx, jnp.int64), a.shape + idx.shape[-1:]),
                               a[..., None], axis=-1)[..., 0]


def _gather_impl(x, idx):
    lead = x.shape[:-2]
    flat = jnp.take_along_axis(x.reshape(lead + (-1,)), idx.reshape(lead + (-1,)), axis=-1)
    return flat.reshape(idx.shape)


_P = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
_P2 = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True)
_IDX = Const(np.array([[[[0, 3], [5, 5]]]]))  # (1, 1, 2, 2) positions into a 3x3 input

_pool_gather, _pool_scatter = linear_pair(
    "max_pool_gather", _gather_impl, grad_name="MaxPool2DWithIndicesBackwardBackward0",
    t_grad_name="MaxPool2DWithIndicesBackward0",
    samples=[Sample((1, 1, 3, 3), _IDX)], t_samples=[Sample((1, 1, 2, 2), _IDX, shape=(1, 1, 3, 3))])

_max_pool_indices = register(Op("max_pool_indices", _max_pool_indices_impl))

_max_pool = register(Op(
    "max_pool2d", _max_pool_impl, grad_name="MaxPool2DWithIndicesBackward0",
    vjp=lambda g, x, *, out, **p: _pool_scatter.public(
        g, _max_pool_indices(x, **p), shape=x.shape),
    samples=[Sample((2, 2, 4, 4), **_P), Sample((1, 2, 5, 4), **_P2)]))
_max_pool.public = lambda x, **p: _max_pool(x, **p)


def _pair(v, name, default=None):
    if v is None:
        v = default
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]),) * 2
        if len(v) != 2:
            raise RuntimeError(f"max_pool2d: {name} must either be a single int, or a tuple of "
                               f"two ints")
        return tuple(int(e) for e in v)
    return (int(v),) * 2


def _pool_params(input, kernel_size, stride, padding, dilation, ceil_mode, name):  # noqa: A002
    if input.ndim not in (3, 4):
        raise RuntimeError(f"non-empty 3D or 4D (batch mode) tensor expected for input")
    if not input.is_floating_point():
        raise NotImplementedError(f'"{name}" not implemented for \'{_SCALAR_NAME[input.dtype.name]}\'')
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride, "stride", k) if stride not in ((), []) else k
    p = _pair(padding, "padding")
    d = _pair(dilation, "dilation")
    for i in range(2):
        if p[i] > (d[i] * (k[i] - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p[i]}, kernel_size={k[i]} and dilation={d[i]}")
    h, w = input.shape[-2:]
    oh = _out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        c = input.shape[-3]
        raise RuntimeError(f"Given input size: ({c}x{h}x{w}). Calculated output size: "
                           f"({c}x{oh}x{ow}). Output size is too small")
    return dict(kernel=k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil_mode))


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
                            ceil_mode=False, return_indices=True):
    """``(values, indices)`` of 2-D max pooling; ``indices`` are flat positions in each
    ``H * W`` plane (PyTorch's convention, for ``max_unpool2d``)."""
    p = _pool_params(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    return _max_pool(input, **p), _max_pool_indices(input.detach(), **p)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``, as
    ``torch.nn.functional.max_pool2d`` (``stride`` defaults to ``kernel_size``)."""
    if return_indices:
        return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    p = _pool_params(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    return _max_pool(input, **p)


def _one(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def _check_1d(input, name):  # noqa: A002
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{name}() Expected 2D or 3D input tensor, but got "
                           f"{list(input.shape)}")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
                            ceil_mode=False, return_indices=True):
    _check_1d(input, "max_pool1d")
    s = None if stride is None or stride in ((), []) else (1, _one(stride))
    out, idx = max_pool2d_with_indices(input.unsqueeze(-2), (1, _one(kernel_size)), s,
                                       (0, _one(padding)), (1, _one(dilation)), ceil_mode)
    return out.squeeze(-2), idx.squeeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``, as ``torch.nn.functional.max_pool1d``."""
    if return_indices:
        return max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    _check_1d(input, "max_pool1d")
    s = None if stride is None or stride in ((), []) else (1, _one(stride))
    return max_pool2d(input.unsqueeze(-2), (1, _one(kernel_size)), s, (0, _one(padding)),
                      (1, _one(dilation)), ceil_mode).squeeze(-2)


# ----------------------------------------------------------------------------- average pooling
@functools.lru_cache(maxsize=256)
def _avg_divisor(H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):  # noqa: N803
    if divisor_override:
        return None
    sizes = []
    for L, k, s, p in ((H, kernel[0], stride[0], padding[0]), (W, kernel[1], stride[1], padding[1])):
        o = _out_size(L, k, s, p, 1, ceil_mode)
        start = np.arange(o) * s - p
        end = np.minimum(start + k, L + p)
        size = end - start
        valid = np.minimum(end, L) - np.maximum(start, 0)
        sizes.append(size if count_include_pad else valid)
    return (sizes[0][:, None] * sizes[1][None, :]).astype(np.float64)


def _avg_pool_impl(x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    h, w = x.shape[-2:]
    o = [_out_size(L, k, s, p, 1, ceil_mode) for L, k, s, p in
         ((h, kernel[0], stride[0], padding[0]), (w, kernel[1], stride[1], padding[1]))]
    hi = [max(0, (o[i] - 1) * stride[i] + kernel[i] - (h, w)[i] - padding[i]) for i in range(2)]
    lead = (1,) * (x.ndim - 2)
    sums = lax.reduce_window(x, np.array(0, x.dtype), lax.add, lead + kernel, lead + stride,
                             ((0, 0),) * len(lead) + ((padding[0], hi[0]), (padding[1], hi[1])))
    sums = sums[..., :o[0], :o[1]]
    div = _avg_divisor(h, w, kernel, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)
    return sums / (divisor_override if div is None else jnp.asarray(div, x.dtype))


_AP = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, count_include_pad=True,
           divisor_override=None)
_AP2 = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False,
            divisor_override=None)
_avg_pool, _avg_pool_t = linear_pair(
    "avg_pool2d", _avg_pool_impl, grad_name="AvgPool2DBackward0",
    t_grad_name="AvgPool2DBackwardBackward0",
    samples=[Sample((2, 2, 4, 4), **_AP), Sample((1, 2, 5, 4), **_AP2)],
    t_samples=[Sample((1, 2, 3, 5), shape=(1, 2, 5, 4), **_AP2)])


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``."""
    if input.ndim not in (3, 4):
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride, "stride", k) if stride not in ((), []) else k
    p = _pair(padding, "padding")
    for i in range(2):
        if p[i] > k[i] // 2:
            raise RuntimeError(f"pad should be at most half of kernel size, but got pad={p[i]} "
                               f"and kernel_size={k[i]}")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    params = dict(kernel=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                  count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
    return _avg_pool(input, **params)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True):
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d``."""
    _check_1d(input, "avg_pool1d")
    s = None if stride is None or stride in ((), []) else (1, _one(stride))
    return avg_pool2d(input.unsqueeze(-2), (1, _one(kernel_size)), s, (0, _one(padding)),
                      ceil_mode, count_include_pad).squeeze(-2)


# ----------------------------------------------------------------------------- adaptive pooling
@functools.lru_cache(maxsize=256)
def _bins(L, o):  # noqa: N803
    """``(o, L)`` 0/1 matrix of PyTorch's adaptive bins ``[floor(i L / o), ceil((i+1) L / o))``."""
    m = np.zeros((o, L))
    for i in range(o):
        m[i, (i * L) // o: -(-((i + 1) * L) // o)] = 1
    return m


def _adaptive_impl(x, *, output_size):
    h, w = x.shape[-2:]
    mh, mw = _bins(h, output_size[0]), _bins(w, output_size[1])
    cnt = mh.sum(1)[:, None] * mw.sum(1)[None, :]
    s = jnp.einsum("oh,...hw,pw->...op", jnp.asarray(mh, x.dtype), x, jnp.asarray(mw, x.dtype),
                   precision=lax.Precision.HIGHEST)
    return s / jnp.asarray(cnt, x.dtype)


_adaptive, _adaptive_t = linear_pair(
    "adaptive_avg_pool2d", _adaptive_impl, grad_name="AdaptiveAvgPool2DBackward0",
    t_grad_name="AdaptiveAvgPool2DBackwardBackward0",
    samples=[Sample((2, 2, 5, 4), output_size=(2, 3)), Sample((1, 1, 7, 3), output_size=(3, 3))],
    t_samples=[Sample((1, 2, 2, 3), shape=(1, 2, 5, 4), output_size=(2, 3))])


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """Average pooling to a fixed ``output_size`` (an int, a pair, ``None`` keeps a dim), as
    ``torch.nn.functional.adaptive_avg_pool2d``."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    h, w = input.shape[-2:]
    if not isinstance(output_size, (tuple, list)):
        output_size = (output_size, output_size)
    o = (h if output_size[0] is None else int(output_size[0]),
         w if output_size[1] is None else int(output_size[1]))
    if o == (1, 1):  # PyTorch takes the mean here (grad_fn MeanBackward1)
        return input.mean((-2, -1), keepdim=True)
    return _adaptive(input, output_size=o)


def adaptive_avg_pool1d(input, output_size):  # noqa: A002
    _check_1d(input, "adaptive_avg_pool1d")
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, _one(output_size))).squeeze(-2)


# ----------------------------------------------------------------------------- padding
def _pad_impl(x, *, pads, mode, value):
    if mode == "constant":
        cfg = [(0, 0, 0)] * (x.ndim - len(pads)) + [(lo, hi, 0) for lo, hi in pads]
        return lax.pad(x, jnp.asarray(value, x.dtype), cfg)
    width = [(0, 0)] * (x.ndim - len(pads)) + list(pads)
    return jnp.pad(x, width, mode={"reflect": "reflect", "replicate": "edge",
                                   "circular": "wrap"}[mode])


def _pad_name(params, args):
    mode, n = params["mode"], len(params["pads"])
    if mode == "constant":
        return "ConstantPadNdBackward0"
    if mode == "circular":  # PyTorch builds it from slice copies
        return "CopySlices"
    return f"{'Reflection' if mode == 'reflect' else 'Replication'}Pad{n}DBackward0"


_pad, _pad_t = linear_pair(
    "pad", _pad_impl, grad_name=_pad_name, t_grad_name="PadBackwardBackward0",
    linear_params=lambda p: dict(p, value=0.0),
    samples=[Sample((2, 3), pads=((1, 2),), mode="constant", value=0.5),
             Sample((2, 3, 4), pads=((1, -1), (2, 0)), mode="constant", value=0.0),
             Sample((1, 2, 5), pads=((2, 1),), mode="reflect", value=0.0),
             Sample((1, 2, 3, 4), pads=((1, 2), (3, 1)), mode="reflect", value=0.0),
             Sample((1, 2, 3, 4), pads=((1, 2), (0, 3)), mode="replicate", value=0.0)],
    t_samples=[Sample((1, 2, 6, 8), shape=(1, 2, 3, 4), pads=((1, 2), (3, 1)), mode="reflect",
                      value=0.0)])


def pad(input, pad, mode="constant", value=None):  # noqa: A002
    """Pad the last ``len(pad) // 2`` dims of ``input``: ``pad = (left, right, top, bottom,
    ...)`` starting from the last dim, as ``torch.nn.functional.pad``. ``mode`` is
    ``'constant'`` (negative widths crop), ``'reflect'``, ``'replicate'`` or ``'circular'``."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    n = len(pad) // 2
    if n > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input "
                           "dimension but got padding length " f"{len(pad)} and input of dimension "
                           f"{input.ndim}")
    pairs = tuple((pad[2 * i], pad[2 * i + 1]) for i in range(n))[::-1]
    if mode == "constant":
        return _pad(input, pads=pairs, mode=mode, value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if n > 3 or input.ndim < n + 1:
        raise NotImplementedError(f"Only 2D, 3D, 4D, 5D padding with non-constant padding are "
                                  f"supported for now")
    for i, (lo, hi) in enumerate(pairs):
        size = input.shape[input.ndim - n + i]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension "
                               f"{input.ndim - n + i} of input {list(input.shape)}")
    return _pad(input, pads=pairs, mode=mode, value=0.0)
