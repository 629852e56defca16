"""Convolution: ``conv1d``/``conv2d`` (stride, padding incl. ``'same'``/``'valid'``, dilation,
groups, bias) and ``conv_transpose1d``/``conv_transpose2d``, each one registered op over
``jax.lax.conv_general_dilated`` (grad_fn ``ConvolutionBackward0``, as PyTorch).

A convolution ``B(x, w)`` is bilinear, so its three ops close under differentiation:

    conv(x, w, b)             = B(x, w) + b
    conv_input_grad(g, w, b)  = B_x^T(g; w) + b       (= conv_transpose, and dx of conv)
    conv_weight_grad(x, g)    = B_w^T(g; x)           (dw of conv)

each rule being one of the three (``<gg, B_x^T(g; w)> = <B(gg, w), g>`` and so on), so double
backward is as fused as the forward. The transposes are ``jax.linear_transpose`` of ``B``: the
dilated convolutions jax's own autodiff would emit.
"""
from __future__ import annotations

import jax
from jax import lax

from .._errors import SCALAR_TYPE_NAME as _SCALAR_NAME
from ._registry import Op, Sample, register
from .reduction import sum as _sum

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "convolution"]

_DN = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _b(x, w, *, stride, padding, dilation, groups):
    return lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                    feature_group_count=groups,
                                    dimension_numbers=_DN[x.ndim - 2])


def _add_bias(out, b):
    return out if b is None else out + b.reshape((1, -1) + (1,) * (out.ndim - 2))


def _conv_impl(x, w, b=None, *, stride, padding, dilation, groups):
    return _add_bias(_b(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups), b)


def _input_grad_impl(g, w, b=None, *, shape, stride, padding, dilation, groups, api):
    def f(x):
        return _b(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (out,) = jax.linear_transpose(f, jax.ShapeDtypeStruct(tuple(shape), g.dtype))(g)
    return _add_bias(out, b)


def _weight_grad_impl(x, g, *, shape, stride, padding, dilation, groups):
    def f(w):
        return _b(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (out,) = jax.linear_transpose(f, jax.ShapeDtypeStruct(tuple(shape), g.dtype))(g)
    return out


def _bias_grad(g):
    return _sum(g, (0,) + tuple(range(2, g.ndim)))


def _conv(x, w, b=None, **p):
    return _conv_op(x, w, **p) if b is None else _conv_op(x, w, b, **p)


def _in_grad(g, w, b, shape, api, **p):
    args = (g, w) if b is None else (g, w, b)
    return _input_grad_op(*args, shape=tuple(shape), api=api, **p)


def _w_grad(x, g, shape, **p):
    return _weight_grad_op(x, g, shape=tuple(shape), **p)


_P = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
_P1 = dict(stride=(2,), padding=((1, 1),), dilation=(1,), groups=1)
_PG = dict(stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1), groups=2)

_conv_op = register(Op(
    "convolution", _conv_impl, grad_name="ConvolutionBackward0",
    vjp=(lambda g, x, w, b=None, *, out, **p: _in_grad(g, w, None, x.shape, False, **p),
         lambda g, x, w, b=None, *, out, **p: _w_grad(x, g, w.shape, **p),
         lambda g, x, w, b=None, *, out, **p: _bias_grad(g)),
    tol={"atol": 1e-9},
    samples=[Sample((2, 2, 4, 4), (3, 2, 2, 2), (3,), **_P),
             Sample((1, 4, 5, 4), (4, 2, 2, 2), **_PG),
             Sample((2, 2, 7), (3, 2, 3), (3,), **_P1)]))
_conv_op.public = _conv

_input_grad_op = register(Op(
    "conv_input_grad", _input_grad_impl,
    grad_name=lambda p, a: "ConvolutionBackward0" if p["api"] else "ConvolutionBackwardBackward0",
    vjp=(lambda gg, g, w, b=None, *, out, shape, api, **p: _conv(gg, w, None, **p),
         lambda gg, g, w, b=None, *, out, shape, api, **p: _w_grad(gg, g, w.shape, **p),
         lambda gg, g, w, b=None, *, out, shape, api, **p: _bias_grad(gg)),
    tol={"atol": 1e-9},
    samples=[Sample((2, 3, 3, 3), (3, 2, 2, 2), (2,), shape=(2, 2, 4, 4), api=True, **_P),
             Sample((1, 4, 4, 3), (4, 2, 2, 2), shape=(1, 4, 5, 4), api=False, **_PG)]))
_input_grad_op.public = lambda g, w, b=None, *, shape, api, **p: _in_grad(g, w, b, shape, api, **p)

_weight_grad_op = register(Op(
    "conv_weight_grad", _weight_grad_impl, grad_name="ConvolutionBackwardBackward0",
    vjp=(lambda gw, x, g, *, out, shape, **p: _in_grad(g, gw, None, x.shape, False, **p),
         lambda gw, x, g, *, out, shape, **p: _conv(x, gw, None, **p)),
    tol={"atol": 1e-9},
    samples=[Sample((2, 2, 4, 4), (2, 3, 3, 3), shape=(3, 2, 2, 2), **_P),
             Sample((1, 4, 5, 4), (1, 4, 4, 3), shape=(4, 2, 2, 2), **_PG)]))
_weight_grad_op.public = lambda x, g, *, shape, **p: _w_grad(x, g, shape, **p)


# ----------------------------------------------------------------------------- public API
def _tuple(v, n, what="value"):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return tuple(int(e) for e in v) * n
        if len(v) != n:
            raise RuntimeError(f"expected {what} to be a single integer value or a list of {n} "
                               f"values to match the convolution dimensions, but got "
                               f"{what}={list(v)}")
        return tuple(int(e) for e in v)
    return (int(v),) * n


def _check(input, weight, bias, n, name, groups):  # noqa: A002
    if input.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {name}, "
                           f"but got input of size: {list(input.shape)}")
    if weight.ndim != n + 2:
        raise RuntimeError(f"weight should have at least three dimensions" if n == 1 else
                           f"Expected {n + 2}-dimensional weight for {n + 2}-dimensional input "
                           f"{list(input.shape)}, but got {weight.ndim}-dimensional weight of size "
                           f"{list(weight.shape)} instead")
    for t in (weight, bias):
        if t is not None and t.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {_cpp(input.dtype)} but found "
                               f"{_cpp(t.dtype)}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")


def _cpp(dtype):
    return _SCALAR_NAME[dtype.name]


def _batched(input, n):  # noqa: A002
    """(batched input, whether to squeeze the result): PyTorch accepts unbatched inputs."""
    if input.ndim == n + 1:
        return input.unsqueeze(0), True
    return input, False


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,  # noqa: A002
                groups):
    """``torch.convolution``: the one entry of every ``conv*`` and ``conv_transpose*``."""
    n = weight.ndim - 2
    if transposed:
        return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                               dilation, n, f"conv_transpose{n}d")
    return _convnd(input, weight, bias, stride, padding, dilation, groups, n, f"conv{n}d")


def _convnd(input, weight, bias, stride, padding, dilation, groups, n, name):  # noqa: A002
    _check(input, weight, bias, n, name, groups)
    x, squeeze = _batched(input, n)
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    k = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            tot = [d * (kk - 1) for d, kk in zip(dilation, k)]
            pads = tuple((t // 2, t - t // 2) for t in tot)
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    else:
        pads = tuple((p, p) for p in _tuple(padding, n, "padding"))
    cin = x.shape[1]
    if weight.shape[0] % groups or cin != weight.shape[1] * groups:
        if weight.shape[0] % groups:
            raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by "
                               f"{groups} at dimension 0, but got weight of size "
                               f"{list(weight.shape)} instead")
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {weight.shape[1] * groups} channels, but "
                           f"got {cin} channels instead")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"Given weight of size {list(weight.shape)}, expected bias to be "
                           f"1-dimensional with {weight.shape[0]} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    padded = [x.shape[2 + i] + sum(pads[i]) for i in range(n)]
    eff = [dilation[i] * (k[i] - 1) + 1 for i in range(n)]
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}"
                           f"). Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be "
                           f"greater than actual input size")
    out = _conv(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return out.squeeze(0) if squeeze else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-D convolution over ``(N, C_in, L)`` (or unbatched ``(C_in, L)``), as
    ``torch.nn.functional.conv1d``; ``padding`` may be an int, a tuple, ``'valid'`` or
    ``'same'``."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution over ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``), as
    ``torch.nn.functional.conv2d``.

        >>> import tracegrad as torch
        >>> x = torch.ones(1, 1, 4, 4)
        >>> torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3), padding="same")[0, 0, 0]
        tensor([4., 6., 6., 4.])
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, n,  # noqa: A002
                    name):
    _check(input, weight, bias, n, name, groups)
    x, squeeze = _batched(input, n)
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    padding, output_padding = _tuple(padding, n, "padding"), _tuple(output_padding, n,
                                                                    "output_padding")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {weight.shape[0]} channels, but got "
                           f"{x.shape[1]} channels instead")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise RuntimeError("output padding must be smaller than either stride or dilation, "
                               f"but got output_padding: {list(output_padding)}, stride: "
                               f"{list(stride)}, dilation: {list(dilation)}")
    k = tuple(weight.shape[2:])
    size = [(x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1)
            + output_padding[i] + 1 for i in range(n)]
    shape = (x.shape[0], weight.shape[1] * groups, *size)
    out = _in_grad(x, weight, bias, shape, True, stride=stride,
                   padding=tuple((p, p) for p in padding), dilation=dilation, groups=groups)
    return out.squeeze(0) if squeeze else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,  # noqa: A002
                     dilation=1):
    """Transposed 1-D convolution (the gradient of ``conv1d`` with respect to its input), as
    ``torch.nn.functional.conv_transpose1d``; ``weight`` is ``(C_in, C_out / groups, k)``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,  # noqa: A002
                     dilation=1):
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``; ``weight`` is
    ``(C_in, C_out / groups, kH, kW)``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")
