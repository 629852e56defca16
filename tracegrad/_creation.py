"""Tensor creation (``tensor``, ``zeros``, ``arange``, ``randn`` ...) with PyTorch's signatures,
dtype inference and argument checks, and the random number generators.

Every value is made with an explicit dtype (jax runs with x64 on, so jnp's defaults would give
float64/int64 where PyTorch gives float32) and placed on the requested device explicitly, so a
CPU tensor stays on the host even when jax's default backend is a GPU.

Random numbers come from ``jax.random`` keys held by a ``Generator``: each random call splits
the generator's key, so ``manual_seed(s)`` replays the same sequence of random tensors. The
streams differ from PyTorch's (the values are not bit-identical to torch's for a seed).
"""
from __future__ import annotations

import builtins
import collections.abc
import math
import operator
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from . import _dtype as D
from ._device import CPU, as_device, device as _device_cls
from ._errors import C_TYPE_NAME as _C_TYPE, SCALAR_TYPE_NAME as _CPP_NAME
from ._tensor import Tensor

__all__ = ["tensor", "as_tensor", "asarray", "from_numpy", "zeros", "ones", "empty", "full",
           "arange", "linspace", "eye", "zeros_like", "ones_like", "empty_like", "full_like",
           "rand_like", "randn_like", "randint_like", "randn", "rand", "randint", "randperm",
           "normal", "Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float

_COPY_WARNING = (
    "To copy construct from a tensor, it is recommended to use sourceTensor.clone().detach() or "
    "sourceTensor.clone().detach().requires_grad_(True), rather than torch.tensor(sourceTensor).")

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


def _check_generator(fname, generator):
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{fname}(): argument 'generator' must be torch.Generator, not "
                        f"{_tname(generator)}")
    return generator


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
    if dt is D.bool or (dt.category == 2 and not check_float):
        return False
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        return False
    if dt.category == 2:
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


# ---------------------------------------------------------------------------------- tensor()
_SCALAR_TYPES = (_bool, _int, _float)


def _np_scalar_dtype(x):
    try:
        return D.from_np(x.dtype)
    except TypeError:
        raise TypeError(f"can't convert np.ndarray of type numpy.{x.dtype.name}. The only "
                        "supported types are: float64, float32, float16, bfloat16, int64, int32, "
                        "int16, int8, uint8, and bool.") from None


def _is_sequence(x):
    if isinstance(x, (list, tuple, range)):
        return True
    return (isinstance(x, collections.abc.Sequence)
            and not isinstance(x, (str, bytes, bytearray)))


class _Collector:
    """One pass over nested sequences: checks the shape, promotes the element dtypes and
    flattens the leaves into a list of Python numbers."""

    __slots__ = ("shape", "flat", "dtype")

    def __init__(self, shape):
        self.shape = shape
        self.flat = []
        self.dtype = None

    def _promote(self, d):
        self.dtype = d if self.dtype is None else D.promote_types(self.dtype, d)

    def visit(self, seq, dim):
        shape = self.shape
        if len(seq) != shape[dim]:
            raise ValueError(f"expected sequence of length {shape[dim]} at dim {dim} "
                             f"(got {len(seq)})")
        if dim == len(shape) - 1:
            kinds = {type(x) for x in seq}
            if kinds <= {_float, _int, _bool}:  # the common case: a row of Python numbers
                self.flat.extend(seq)
                for k in kinds:
                    self._promote(D.bool if k is _bool else D.int64 if k is _int
                                  else D.get_default_dtype())
                return
            for x in seq:
                self.leaf(x)
            return
        for x in seq:
            if isinstance(x, (np.ndarray, jax.Array)) and x.ndim:
                self.array(np.asarray(x), dim + 1)
            elif isinstance(x, Tensor) and x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            elif _is_sequence(x):
                self.visit(x, dim + 1)
            else:
                raise TypeError(f"expected a sequence at dim {dim + 1}, got {_tname(x)} "
                                f"(not a sequence)")

    def array(self, arr, dim):
        if arr.shape != self.shape[dim:]:
            for k, (want, got) in enumerate(zip(self.shape[dim:], arr.shape)):
                if want != got:
                    raise ValueError(f"expected sequence of length {want} at dim {dim + k} "
                                     f"(got {got})")
            raise ValueError(f"expected a sequence with {len(self.shape) - dim} dimensions at "
                             f"dim {dim} (got an array with {arr.ndim})")
        self._promote(_np_scalar_dtype(arr))
        self.flat.extend(arr.ravel().tolist())

    def leaf(self, x):
        if isinstance(x, (np.generic, np.ndarray, jax.Array)) and np.ndim(x) == 0:
            arr = np.asarray(x)  # numpy scalars keep their dtype (np.float64 is a float too)
            self._promote(_np_scalar_dtype(arr))
            self.flat.append(arr.item())
        elif isinstance(x, _SCALAR_TYPES):
            self._promote(_scalar_type(x))
            self.flat.append(x)
        elif isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            self._promote(x.dtype)
            self.flat.append(x.item())
        elif _is_sequence(x) or isinstance(x, (np.ndarray, jax.Array)):
            raise TypeError(f"'{_tname(x)}' object cannot be interpreted as a number "
                            f"(expected a scalar at dim {len(self.shape)})")
        elif isinstance(x, complex):
            raise TypeError("tracegrad has no complex dtypes: cannot make a tensor of complex")
        else:
            raise RuntimeError(f"Could not infer dtype of {_tname(x)}")


def _sequence_shape(data):
    """The shape read along the first elements (as PyTorch's compute_sizes)."""
    shape = []
    x = data
    while True:
        if isinstance(x, str):
            raise ValueError(f"too many dimensions '{_tname(x)}'")
        if isinstance(x, (np.ndarray, jax.Array)):
            shape.extend(x.shape)
            return shape
        if isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            return shape
        if not _is_sequence(x):
            return shape
        n = len(x)
        shape.append(n)
        if n == 0:
            return shape
        x = x[0]


def _from_sequence(data, dtype):
    """(numpy array, dtype) of nested sequences, with PyTorch's inference and checks."""
    shape = tuple(_sequence_shape(data))
    col = _Collector(shape)
    col.visit(data, 0)
    inferred = col.dtype if col.dtype is not None else D.get_default_dtype()
    return _build(col.flat, shape, inferred, dtype)


def _build(flat, shape, inferred, dtype):
    """A numpy array of ``dtype`` (default ``inferred``) from a flat list of Python numbers."""
    target = dtype if dtype is not None else inferred
    # build exactly (float64 / int64 / bool), then cast: int -> uint8 wraps, float -> int
    # truncates, double -> float rounds once, as PyTorch's element-wise conversion does
    if inferred.category == 2 or target.category == 2:
        build = np.float64
    elif inferred.category == 1:
        build = np.int64
    else:
        build = np.bool_
    try:
        arr = np.array(flat, dtype=build)
    except OverflowError:
        raise ValueError("Overflow when unpacking long long") from None
    _check_fits(arr, target, name=target.name)
    with np.errstate(all="ignore"):
        return arr.reshape(shape).astype(target.np, copy=False), target


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new leaf tensor holding a copy of ``data`` (Python scalars, nested lists/tuples,
    numpy or jax arrays, Tensors). The dtype is inferred as in PyTorch: floats -> the default
    float dtype, ints -> int64, bools -> bool; numpy/jax arrays keep their dtype."""
    dtype = _check_dtype("tensor", dtype)
    _check_requires_grad("tensor", requires_grad)
    if isinstance(data, Tensor):
        warnings.warn(_COPY_WARNING, UserWarning, stacklevel=2)
        dev = data.device if device is None else _check_device("tensor", device)
        value = data._data.value
        if dtype is not None and dtype.np != value.dtype:
            value = value.astype(dtype.np)
        if dev != data.device:
            value = jax.device_put(value, dev.jax_device())
        return _finish(value, dev, requires_grad)
    dev = _check_device("tensor", device)
    if isinstance(data, jax.Array):  # immutable: sharing the buffer is a copy in effect
        d = _np_scalar_dtype(data) if dtype is None else dtype
        value = data if data.dtype == d.np else data.astype(d.np)
        if not isinstance(data, jax.core.Tracer):
            value = jax.device_put(value, dev.jax_device())
        return _finish(value, dev, requires_grad)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
        d = _np_scalar_dtype(arr) if dtype is None else dtype
        return _finish(_put_copy(arr, dev, d.np), dev, requires_grad)
    if isinstance(data, _SCALAR_TYPES):
        arr, _ = _build([data], (), _scalar_type(data), dtype)
        return _finish(_put(arr, dev), dev, requires_grad)
    if isinstance(data, complex):
        raise TypeError("tracegrad has no complex dtypes: cannot make a tensor of complex")
    if isinstance(data, str):
        raise TypeError(f"new(): invalid data type '{_tname(data)}'")
    if _is_sequence(data):
        arr, d = _from_sequence(data, dtype)
        return _finish(_put(arr, dev), dev, requires_grad)
    if hasattr(data, "__array__"):
        return tensor(np.asarray(data), dtype=dtype, device=device, requires_grad=requires_grad)
    raise RuntimeError(f"Could not infer dtype of {_tname(data)}")


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor: a Tensor is returned as is when its dtype and device already match
    (else converted with ``.to``, keeping autograd history); other data is copied in as by
    ``tensor`` (jax arrays are immutable, so no memory is shared with numpy)."""
    dtype = _check_dtype("as_tensor", dtype)
    if isinstance(data, Tensor):
        dev = None if device is None else _check_device("as_tensor", device)
        if (dtype is None or dtype is data.dtype) and (dev is None or dev == data.device):
            return data
        return data.to(device=dev, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """``torch.asarray``: like ``as_tensor``; ``copy=True`` always returns a new tensor."""
    if isinstance(obj, Tensor) and not copy:
        t = as_tensor(obj, dtype=dtype, device=device)
    elif isinstance(obj, Tensor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = tensor(obj, dtype=dtype, device=device)
    else:
        t = tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(ndarray):
    """A CPU tensor with the numpy array's dtype and values (a copy: jax arrays are immutable)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {_tname(ndarray)})")
    _np_scalar_dtype(ndarray)  # TypeError for dtypes tracegrad lacks
    return Tensor._make(_put_copy(ndarray, CPU), CPU)


# ---------------------------------------------------------------------------------- filled
_ZEROS, _ONES = object(), object()
_HOST_BYTES = 1 << 20  # below this size, making the array with numpy and copying it is faster


def _filled(fname, shape, fill, dtype, device, requires_grad):
    dtype = _check_dtype(fname, dtype) or D.get_default_dtype()
    dev = _check_device(fname, device)
    _check_requires_grad(fname, requires_grad)
    jd = dev.jax_device()
    if fill is _ZEROS or fill is _ONES:
        fill = 0 if fill is _ZEROS else 1
    else:
        with np.errstate(all="ignore"):  # 1e10 -> float16 is inf, -1 -> uint8 wraps
            fill = np.asarray(fill).astype(dtype.np)
    if math.prod(shape) * dtype.itemsize <= _HOST_BYTES:  # small: fill on the host and copy
        value = jax.device_put(np.full(shape, fill, dtype=dtype.np), jd)
    else:  # large: fill on the device, no transfer
        value = jnp.full(shape, fill, dtype=dtype.np, device=jd)
    return _finish(value, dev, requires_grad)


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, **kw):
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros(size=(2, 3))``."""
    _no_out("zeros", out)
    shape = _parse_size("zeros", size, _size_kw("zeros", kw))
    return _filled("zeros", shape, _ZEROS, dtype, device, requires_grad)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False, **kw):
    """A tensor of ones: ``ones(2, 3)``, ``ones((2, 3))``, ``ones(size=(2, 3))``."""
    _no_out("ones", out)
    shape = _parse_size("ones", size, _size_kw("ones", kw))
    return _filled("ones", shape, _ONES, dtype, device, requires_grad)


def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, memory_format=None, **kw):
    """An "uninitialised" tensor (jax has no such thing: it holds zeros)."""
    _no_out("empty", out)
    shape = _parse_size("empty", size, _size_kw("empty", kw))
    return _filled("empty", shape, _ZEROS, dtype, device, requires_grad)


def _size_kw(fname, kw):
    size = kw.pop("size", None)
    if kw:
        raise TypeError(f"{fname}() got an unexpected keyword argument '{next(iter(kw))}'")
    return size


def _no_out(fname, out):
    if out is not None:
        raise NotImplementedError(f"{fname}(): the out= argument is not supported by tracegrad "
                                  "(jax arrays are immutable); assign the result instead")


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False):
    """A tensor filled with ``fill_value``; without ``dtype`` the dtype follows the value
    (bool -> bool, int -> int64, float -> the default float dtype)."""
    _no_out("full", out)
    shape = _check_shape("full", size)
    value = _number("full", "fill_value", 2, fill_value)
    dtype = _check_dtype("full", dtype) or _scalar_type(value)
    _check_fits(value, dtype)
    return _filled("full", shape, value, dtype, device, requires_grad)


# ---------------------------------------------------------------------------------- ranges
def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False, pin_memory=False):
    """``arange(end)``, ``arange(start, end, step=1)``: int64 when all of start, end, step are
    ints, else the default float dtype; values ``start + i * step`` computed as PyTorch (in
    double for float dtypes, in int64 for integer dtypes)."""
    _no_out("arange", out)
    if end is None:
        start, end = 0, start
        pos = (0, 1, 2)
    else:
        pos = (1, 2, 3)
    vals = [_number("arange", n, p, x) for n, p, x in
            zip(("start", "end", "step"), pos, (start, end, step))]
    dtype = _check_dtype("arange", dtype)
    if dtype is None:
        anyf = builtins.any(isinstance(v, _float) for v in vals)
        dtype = D.get_default_dtype() if anyf else D.int64
    if dtype is D.bool:
        raise NotImplementedError("\"arange_cpu\" not implemented for 'Bool'")
    s, e, st = vals
    # As PyTorch: int64 checks and sizes the range with the arguments cast to int64 (so
    # arange(0, 1, 0.5, dtype=int64) has a zero step); other dtypes use doubles for both.
    cs, ce, cst = (_float(v) for v in vals)
    if dtype is D.int64:
        try:
            cs, ce, cst = (_int(v) for v in vals)
        except (OverflowError, ValueError):
            raise RuntimeError(f"unsupported range: {s} -> {e}") from None
    if cst == 0:
        if st != 0:  # a fractional step cast to int64 (PyTorch raises ValueError here)
            raise ValueError("step must be nonzero")
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(cs) and math.isfinite(ce)):
        raise RuntimeError(f"unsupported range: {s} -> {e}")
    if not ((cst > 0 and ce >= cs) or (cst < 0 and ce <= cs)):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is D.int64:
        sgn = 1 if cst > 0 else -1
        n = (ce - cs + cst - sgn) // cst
    else:
        n = math.ceil((ce - cs) / cst)
    if not 0 <= n <= 2 ** 63 - 1:
        raise RuntimeError("invalid size, possible overflow?")
    dev = _check_device("arange", device)
    _check_requires_grad("arange", requires_grad)
    with np.errstate(all="ignore"):
        if dtype.category == 1:  # PyTorch's accumulate type for integers is int64
            xs, xst = np.int64(math.trunc(s)), np.int64(math.trunc(st))
            host = (xs + np.arange(n, dtype=np.int64) * xst).astype(dtype.np)
        else:  # ... and double for float32/float64, float for float16/bfloat16
            acc = np.float64 if dtype.itemsize >= 4 else np.float32
            host = (acc(s) + np.arange(n, dtype=acc) * acc(st)).astype(dtype.np)
    return _finish(_put(host, dev), dev, requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` (default float dtype), with
    PyTorch's CPU formula (the first half counts up from ``start``, the second down from
    ``end``)."""
    _no_out("linspace", out)
    s = _number("linspace", "start", 1, start)
    e = _number("linspace", "end", 2, end)
    steps = _check_int("linspace", "steps", 3, steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dtype = _check_dtype("linspace", dtype) or D.get_default_dtype()
    dev = _check_device("linspace", device)
    _check_requires_grad("linspace", requires_grad)
    idx = np.arange(steps, dtype=np.int64)
    for v in (s, e):
        _check_fits(v, dtype, check_float=True)
    if dtype.category == 2:  # computed in the dtype itself, as PyTorch's CPU kernel
        f = dtype.np.type
        s_, e_ = np.asarray(s, np.float64).astype(f), np.asarray(e, np.float64).astype(f)
        step_t, idxf = f, idx.astype(f)
    else:  # start and end are cast to the integer dtype first (ints wrap); the step is a double
        s_, e_ = (np.float64(np.asarray(_bool(v) if dtype is D.bool else math.trunc(v))
                             .astype(np.int64).astype(dtype.np)) for v in (s, e))
        step_t, idxf = np.float64, idx.astype(np.float64)
    with np.errstate(all="ignore"):
        if steps == 1:
            host = np.asarray([s_], dtype=step_t)
        else:
            step = step_t((step_t(e_) - step_t(s_)) / step_t(steps - 1))
            half = steps // 2
            host = np.where(idx < half, step_t(s_) + step * idxf,
                            step_t(e_) - step * (steps - 1 - idx).astype(step_t)).astype(step_t)
    return _finish(_put(host.astype(dtype.np), dev), dev, requires_grad)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False,
        pin_memory=False):
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    _no_out("eye", out)
    n = _check_int("eye", "n", 1, n)
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    m = n if m is None else _check_int("eye", "m", 2, m)
    if m < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    dtype = _check_dtype("eye", dtype) or D.get_default_dtype()
    dev = _check_device("eye", device)
    _check_requires_grad("eye", requires_grad)
    if n * m * dtype.itemsize <= _HOST_BYTES:
        value = jax.device_put(np.eye(n, m, dtype=dtype.np), dev.jax_device())
    else:
        value = jnp.eye(n, m, dtype=dtype.np, device=dev.jax_device())
    return _finish(value, dev, requires_grad)


# ---------------------------------------------------------------------------------- *_like
def _like(fname, input, dtype, device):  # noqa: A002
    _check_input(fname, input)
    dtype = _check_dtype(fname, dtype) or input.dtype
    dev = input.device if device is None else _check_device(fname, device)
    return tuple(input.shape), dtype, dev


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002
               memory_format=None):
    shape, dtype, dev = _like("zeros_like", input, dtype, device)
    return _filled("zeros_like", shape, _ZEROS, dtype, dev, requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002
              memory_format=None):
    shape, dtype, dev = _like("ones_like", input, dtype, device)
    return _filled("ones_like", shape, _ONES, dtype, dev, requires_grad)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002
               memory_format=None):
    shape, dtype, dev = _like("empty_like", input, dtype, device)
    return _filled("empty_like", shape, _ZEROS, dtype, dev, requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None,  # noqa: A002
              requires_grad=False, memory_format=None):
    """Filled with ``fill_value``; the dtype is the input's (not inferred from the value)."""
    shape, dtype, dev = _like("full_like", input, dtype, device)
    value = _number("full_like", "fill_value", 2, fill_value)
    _check_fits(value, dtype)
    return _filled("full_like", shape, value, dtype, dev, requires_grad)


def rand_like(input, *, generator=None, dtype=None, layout=None, device=None,  # noqa: A002
              requires_grad=False, memory_format=None):
    shape, dtype, dev = _like("rand_like", input, dtype, device)
    return _random("rand_like", "uniform", shape, generator, dtype, dev, requires_grad)


def randn_like(input, *, generator=None, dtype=None, layout=None, device=None,  # noqa: A002
               requires_grad=False, memory_format=None):
    shape, dtype, dev = _like("randn_like", input, dtype, device)
    return _random("randn_like", "normal", shape, generator, dtype, dev, requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, layout=None,  # noqa: A002
                 device=None, requires_grad=False, memory_format=None):
    """``randint_like(input, high)`` or ``randint_like(input, low, high)``."""
    shape, dtype, dev = _like("randint_like", input, dtype, device)
    if high is None:
        low, high = 0, low
    low = _check_int("randint_like", "low", 2, low)
    high = _check_int("randint_like", "high", 3, high)
    return _random("randint_like", "randint", shape, generator, dtype, dev, requires_grad,
                   low=low, high=high)


# ---------------------------------------------------------------------------------- random
class Generator:
    """A random number generator: a ``jax.random`` key that every random call splits.

    ``Generator().manual_seed(s)`` (returns the generator), ``seed()``, ``initial_seed()``,
    ``get_state()`` / ``set_state(state)`` (the key as an 8-byte uint8 tensor). Pass it as
    ``generator=`` to the random functions. One generator serves every device: the sub-key of
    a call is moved to the device that the values are made on."""

    _DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed

    def __init__(self, device="cpu"):
        self.device = _check_device("Generator", device)
        self._seed = self._DEFAULT_SEED
        self._key = None  # made lazily: creating it starts jax's backend

    def __repr__(self):
        return f"<tracegrad.Generator seed={self._seed} device={self.device}>"

    @staticmethod
    def _key_of(seed):
        s = seed & 0xFFFF_FFFF_FFFF_FFFF
        data = np.array([s >> 32, s & 0xFFFF_FFFF], dtype=np.uint32)  # == jax.random.PRNGKey(s)
        return jax.device_put(data, CPU.jax_device())

    def manual_seed(self, seed):
        if isinstance(seed, _bool) or not isinstance(seed, (_int, np.integer)):
            raise RuntimeError(f"manual_seed expected a long, but got {_tname(seed)}")
        seed = _int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise ValueError("Overflow when unpacking long long")
        if seed < 0:
            seed = 0xFFFF_FFFF_FFFF_FFFF + seed
        self._seed = seed
        self._key = self._key_of(seed)
        return self

    def seed(self):
        """Seed from the OS's entropy; returns the seed."""
        s = _int.from_bytes(os.urandom(8), "little") & (2 ** 63 - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        if self._key is None:
            self._key = self._key_of(self._seed)
        data = np.asarray(self._key).astype(np.uint32).view(np.uint8).copy()
        return Tensor._make(_put(data, CPU), CPU)

    def set_state(self, new_state):
        if not isinstance(new_state, Tensor) or new_state.dtype is not D.uint8 or \
                new_state.numel() != 8:
            raise RuntimeError("set_state expects the uint8 Tensor of 8 bytes that get_state "
                               "returns")
        data = np.asarray(new_state.detach()._data.value).reshape(8).view(np.uint32)
        self._key = jax.device_put(data.copy(), CPU.jax_device())
        return self

    def _next_key(self, dev=CPU):
        """A fresh sub-key for one random call, on ``dev`` (the generator's key advances).

        Split eagerly even while jax traces a function (``ensure_compile_time_eval``), so the
        generator never holds a tracer."""
        with jax.ensure_compile_time_eval():
            if self._key is None:
                self._key = self._key_of(self._seed)
            self._key, sub = _split2(self._key)
        if dev.type != "cpu":
            sub = jax.device_put(sub, dev.jax_device())
        return sub


@jax.jit
def _split2(key):
    keys = jax.random.split(key)
    return keys[0], keys[1]


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (for every device); returns it. As PyTorch, ``int(seed)``
    first, so ``manual_seed(1.0)`` works; negative seeds map to ``0xffff_ffff_ffff_ffff + seed``."""
    seed = _int(seed)
    return default_generator.manual_seed(seed)


def seed():
    """Seed the default generator non-deterministically; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def _random(fname, kind, shape, generator, dtype, dev, requires_grad, low=None, high=None):
    gen = _check_generator(fname, generator)
    _check_requires_grad(fname, requires_grad)
    if kind == "randint":
        dtype = dtype or D.int64
        if high <= low:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got "
                               f"from={low} >= to={high}")
        if dtype.category == 1:
            info = np.iinfo(dtype.np)
            if low < info.min:
                raise RuntimeError(f"from is out of bounds for {dtype.name}")
            if high - 1 > info.max:
                raise RuntimeError(f"to - 1 is out of bounds for {dtype.name}")
        elif dtype is D.bool and (low < 0 or high > 2):
            raise RuntimeError("from is out of bounds for bool" if low < 0
                               else "to - 1 is out of bounds for bool")
        if requires_grad and not dtype.is_floating_point:
            raise RuntimeError(_REQUIRES_GRAD_ERROR)
        key = gen._next_key(dev)
        value = jax.random.randint(key, shape, low, high, dtype=np.int64)
        if dtype is not D.int64:
            value = value.astype(dtype.np)
        return _finish(value, dev, requires_grad)
    dtype = dtype or D.get_default_dtype()
    if not dtype.is_floating_point:
        kernel = "normal_kernel_cpu" if kind == "normal" else "check_uniform_bounds"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_CPP_NAME[dtype.name]}'")
    key = gen._next_key(dev)
    if kind == "normal":
        value = jax.random.normal(key, shape, dtype=dtype.np)
    else:
        value = jax.random.uniform(key, shape, dtype=dtype.np)
    return _finish(value, dev, requires_grad)


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False, pin_memory=False, **kw):
    """Standard normal samples: ``randn(2, 3)``, ``randn((2, 3))``."""
    _no_out("randn", out)
    shape = _parse_size("randn", size, _size_kw("randn", kw))
    dtype = _check_dtype("randn", dtype)
    dev = _check_device("randn", device)
    return _random("randn", "normal", shape, generator, dtype, dev, requires_grad)


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False, **kw):
    """Uniform samples in ``[0, 1)``: ``rand(2, 3)``, ``rand((2, 3))``."""
    _no_out("rand", out)
    shape = _parse_size("rand", size, _size_kw("rand", kw))
    dtype = _check_dtype("rand", dtype)
    dev = _check_device("rand", device)
    return _random("rand", "uniform", shape, generator, dtype, dev, requires_grad)


def randint(*args, size=None, low=None, high=None, generator=None, out=None, dtype=None,
            layout=None, device=None, requires_grad=False, pin_memory=False):
    """``randint(high, size)`` or ``randint(low=0, high, size)``: integers in ``[low, high)``,
    int64 unless ``dtype`` says otherwise."""
    _no_out("randint", out)
    args = list(args)
    size_pos = 3
    if size is None and args:
        size_pos = len(args)
        size = args.pop()
    if len(args) == 2:
        if low is not None or high is not None:
            raise TypeError("randint() got multiple values for argument 'low'/'high'")
        low, high = args
    elif len(args) == 1:
        if high is None:
            high = args[0]
        elif low is None:
            low = args[0]
        else:
            raise TypeError("randint() got multiple values for argument 'low'")
    elif args:
        raise TypeError(f"randint() takes from 2 to 3 positional arguments but {len(args) + 1} "
                        "were given")
    if high is None or size is None:
        raise TypeError("randint() missing required arguments: expected randint(high, size) or "
                        "randint(low, high, size)")
    low = 0 if low is None else _check_int("randint", "low", 1, low)
    high = _check_int("randint", "high", 2, high)
    shape = _check_shape("randint", size, size_pos)
    dtype = _check_dtype("randint", dtype)
    dev = _check_device("randint", device)
    return _random("randint", "randint", shape, generator, dtype, dev, requires_grad,
                   low=low, high=high)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False):
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` says otherwise)."""
    _no_out("randperm", out)
    n = _check_int("randperm", "n", 1, n)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    dtype = _check_dtype("randperm", dtype) or D.int64
    dev = _check_device("randperm", device)
    _check_requires_grad("randperm", requires_grad)
    gen = _check_generator("randperm", generator)
    if requires_grad and not dtype.is_floating_point:
        raise RuntimeError(_REQUIRES_GRAD_ERROR)
    if dtype.category == 1 and n > 0 and n - 1 > np.iinfo(dtype.np).max:
        raise RuntimeError(f"n is too large for result tensor type: '{dtype}'")
    key = gen._next_key(dev)
    value = jax.random.permutation(key, n).astype(dtype.np)
    return _finish(value, dev, requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None,
           device=None, requires_grad=False, pin_memory=False):
    """Normal samples: ``normal(mean_tensor, std_tensor)``, ``normal(mean_tensor, std=1.0)``,
    ``normal(mean, std_tensor)`` (shape broadcast from the tensors) or
    ``normal(mean, std, size)`` with Python numbers.

    As in PyTorch the samples are not differentiable: when ``mean``/``std`` require grad the
    result has a grad_fn whose gradient for them is zero."""
    _no_out("normal", out)
    gen = _check_generator("normal", generator)
    mt, st = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not (mt or st):
        if size is None:
            raise TypeError("normal() received an invalid combination of arguments - got "
                            f"({_tname(mean)}, {_tname(std)}), but expected one of: (Tensor mean, "
                            "Tensor std), (Tensor mean, float std), (float mean, Tensor std), "
                            "(float mean, float std, tuple of ints size)")
        m = _float(_number("normal", "mean", 1, mean))
        s_num = _number("normal", "std", 2, std)
        s = _float(s_num)
        if s < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {s_num}")
        shape = _check_shape("normal", size, 3)
        dtype = _check_dtype("normal", dtype)
        dev = _check_device("normal", device)
        t = _random("normal", "normal", shape, gen, dtype, dev, requires_grad)
        if m == 0.0 and s == 1.0:
            return t
        value = (t._data.value * np.asarray(s, t.dtype.np) + np.asarray(m, t.dtype.np))
        return _finish(value.astype(t.dtype.np), dev, requires_grad)
    if size is not None:
        raise TypeError("normal(): size must not be given when mean or std is a Tensor")
    if dtype is not None or device is not None or requires_grad:
        raise TypeError("normal(): dtype, device and requires_grad are taken from the Tensor "
                        "arguments")
    dtype = D.result_type(mean, std)
    if not dtype.is_floating_point:
        raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for "
                                  f"'{_CPP_NAME[dtype.name]}'")
    dev = (mean if mt else std).device
    mv = mean._data.value if mt else np.asarray(_float(_number("normal", "mean", 1, mean)))
    sv = std._data.value if st else np.asarray(_float(_number("normal", "std", 2, std)))
    if st:
        if bool(jnp.any(sv < 0)):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif sv < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    try:
        shape = jnp.broadcast_shapes(jnp.shape(mv), jnp.shape(sv))
    except ValueError:
        a, b = jnp.shape(mv), jnp.shape(sv)
        raise RuntimeError(f"The size of tensor a ({a[-1] if a else 1}) must match the size of "
                           f"tensor b ({b[-1] if b else 1}) at non-singleton dimension "
                           f"{max(len(a), len(b)) - 1}") from None
    eps = jax.random.normal(gen._next_key(dev), shape, dtype=dtype.np)
    value = (jnp.asarray(mv).astype(dtype.np) + jnp.asarray(sv).astype(dtype.np) * eps)
    out_t = Tensor._make(value.astype(dtype.np), dev)
    grads = [x for x in (mean, std) if isinstance(x, Tensor) and x.requires_grad]
    for x in grads:
        # join the graph with a zero gradient, as PyTorch's normal backward is zero
        out_t = out_t + x * 0
    return out_t
