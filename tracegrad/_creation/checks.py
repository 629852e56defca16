"""Argument checks shared by the creation functions, with PyTorch's exception types and messages,
and the few helpers that finish a tensor (``_finish``, ``_put``)."""
from __future__ import annotations

import builtins
import operator

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dtype as D
from .._device import CPU, as_device, device as _device_cls
from .._errors import C_TYPE_NAME as _C_TYPE, SCALAR_TYPE_NAME as _CPP_NAME
from .._tensor import Tensor

__all__ = ["_CPP_NAME", "_C_TYPE", "_REQUIRES_GRAD_ERROR", "_tname", "_check_dtype",
           "_check_device", "_check_requires_grad", "_check_input", "_check_int", "_parse_size",
           "_check_shape", "_number", "_scalar_type", "_finish", "_put", "_put_copy",
           "_overflows", "_check_fits", "_size_kw", "_no_out"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float

_REQUIRES_GRAD_ERROR = "Only Tensors of floating point and complex dtype can require gradients"


# ---------------------------------------------------------------------------------- checks
def _tname(x):
    return type(x).__name__


def _check_dtype(fname, dtype):
    """The tracegrad dtype of a ``dtype=`` argument (None stays None). Like PyTorch, accepts a
    dtype or the Python types float (float64), int (int64) and bool; rejects strings and numpy
    dtypes."""
    if dtype is None or isinstance(dtype, D.dtype):
        return dtype
    if dtype is _float:
        return D.float64
    if dtype is _int:
        return D.int64
    if dtype is _bool:
        return D.bool
    raise TypeError(f"{fname}(): argument 'dtype' must be torch.dtype, not {_tname(dtype)}")


def _check_device(fname, device):
    if device is None:
        return CPU
    if isinstance(device, _device_cls):
        return device
    if isinstance(device, (str, _int)) and not isinstance(device, _bool):
        return as_device(device)
    raise TypeError(f"{fname}(): argument 'device' must be torch.device, not {_tname(device)}")


def _check_requires_grad(fname, requires_grad):
    if not isinstance(requires_grad, _bool):
        raise TypeError(f"{fname}(): argument 'requires_grad' must be bool, not "
                        f"{_tname(requires_grad)}")
    return requires_grad



def _check_input(fname, input):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{fname}(): argument 'input' (position 1) must be Tensor, not "
                        f"{_tname(input)}")
    return input


def _check_int(fname, name, pos, x):
    """An int argument (Python int, numpy integer, one-element integer Tensor); not a float."""
    if isinstance(x, _bool):
        return _int(x)
    if isinstance(x, (_float, np.floating)) or (isinstance(x, Tensor) and x.is_floating_point()):
        raise TypeError(f"{fname}(): argument '{name}' (position {pos}) must be int, not "
                        f"{_tname(x)}")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{fname}(): argument '{name}' (position {pos}) must be int, not "
                        f"{_tname(x)}") from None


def _parse_size(fname, size, size_kw=None, pos=1):
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])``, ``f(Size)``, ``f(size=(2, 3))`` -> tuple."""
    if size_kw is not None:
        if size:
            raise TypeError(f"{fname}() got multiple values for argument 'size'")
        size = (size_kw,) if not isinstance(size_kw, (tuple, list)) else tuple(size_kw)
    elif not size:
        raise TypeError(f'{fname}() missing 1 required positional arguments: "size"')
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return _check_shape(fname, size, pos)


def _check_shape(fname, size, pos=1):
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{fname}(): argument 'size' (position {pos}) must be tuple of ints, "
                        f"not {_tname(size)}")
    out = []
    for i, s in enumerate(size):
        if isinstance(s, (_float, np.floating)) or (isinstance(s, Tensor)
                                                    and s.is_floating_point()):
            raise TypeError(f"{fname}(): argument 'size' (position {pos}) must be tuple of ints, "
                            f"but found element of type {_tname(s)} at pos {i}")
        try:
            out.append(operator.index(s))
        except TypeError:
            raise TypeError(f"{fname}(): argument 'size' (position {pos}) must be tuple of ints, "
                            f"but found element of type {_tname(s)} at pos {i}") from None
    for s in out:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {out}")
    return tuple(out)


def _number(fname, name, pos, x):
    """A Python number from a ``Number`` argument (Python/numpy scalar or one-element Tensor)."""
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise RuntimeError(f"{fname}(): argument '{name}' must be a Number or a one-element "
                               f"Tensor, got a Tensor with {x.numel()} elements")
        return x.item()
    if isinstance(x, (np.bool_, np.integer, np.floating)):
        return x.item()
    if isinstance(x, (_bool, _int, _float)):
        return x
    raise TypeError(f"{fname}(): argument '{name}' (position {pos}) must be Number, not "
                    f"{_tname(x)}")


def _scalar_type(x):
    """bool -> bool, int -> int64, float -> the default float dtype (PyTorch's Scalar rule)."""
    if isinstance(x, _bool):
        return D.bool
    if isinstance(x, _int):
        return D.int64
    return D.get_default_dtype()


def _finish(value, dev, requires_grad):
    t = Tensor._make(value, dev)
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError(_REQUIRES_GRAD_ERROR)
        t.requires_grad = True
    return t


def _put(host, dev):
    """A numpy array that this module made (and nobody else holds) onto ``dev``.

    On CPU, ``jax.device_put`` may adopt a suitably aligned numpy buffer without copying it
    (even with ``may_alias=False``), so arrays that the caller owns go through ``_put_copy``."""
    return jax.device_put(host, dev.jax_device())


def _put_copy(host, dev, np_dtype=None):
    """A caller's numpy array onto ``dev`` as a private copy (a later change to the numpy
    array must not show in the tensor)."""
    return jax.device_put(np.array(host, dtype=np_dtype, copy=True), dev.jax_device())


def _overflows(arr, dt: D.dtype, check_float=False):
    """c10::overflows, element-wise on an int64/float64/bool numpy array: an integer dtype
    refuses values out of its range (NaN and inf included), except that an unsigned one lets
    negative integers down to -max wrap (``tensor([-1], dtype=uint8)`` is 255). Float dtypes
    are only checked when ``check_float`` (finite values beyond the largest finite value)."""
    if dt is D.bool or (dt.category == D.FLOATING and not check_float):
        return False
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        return False
    if dt.category == D.FLOATING:
        with np.errstate(all="ignore"):
            a = arr.astype(np.float64)
            big = _float(jnp.finfo(dt.np).max)
            return builtins.bool(np.any(np.isfinite(a) & (np.abs(a) > big)))
    info = np.iinfo(dt.np)
    if arr.dtype.kind in "iu":
        if info.min == 0:  # unsigned: negatives wrap
            return builtins.bool(np.any((arr > info.max) | (arr < -_int(info.max))))
        return builtins.bool(np.any((arr < info.min) | (arr > info.max)))
    with np.errstate(all="ignore"):
        return builtins.bool(np.any(~(arr >= info.min) | ~(arr <= info.max)))  # NaN too


def _check_fits(value, dt: D.dtype, check_float=False, name=None):
    """PyTorch refuses a value that overflows the dtype (``full((1,), 300, dtype=uint8)``)."""
    if _overflows(value, dt, check_float):
        raise RuntimeError(f"value cannot be converted to type {name or _C_TYPE[dt.name]} "
                           "without overflow")


def _size_kw(fname, kw):
    size = kw.pop("size", None)
    if kw:
        raise TypeError(f"{fname}() got an unexpected keyword argument '{next(iter(kw))}'")
    return size


def _no_out(fname, out):
    if out is not None:
        raise NotImplementedError(f"{fname}(): the out= argument is not supported by tracegrad "
                                  "(jax arrays are immutable); assign the result instead")

