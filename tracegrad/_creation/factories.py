"""Factories: ``zeros``, ``ones``, ``empty``, ``full``, ``arange``, ``linspace``, ``eye`` and the
non-random ``*_like`` functions.

Every value is made with an explicit dtype (jax runs with x64 on, so jnp's defaults would give
float64/int64 where PyTorch gives float32) and placed on the requested device explicitly, so a
CPU tensor stays on the host even when jax's default backend is a GPU."""
from __future__ import annotations

import builtins
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dtype as D
from .checks import (_check_device, _check_dtype, _check_fits, _check_input, _check_int,
                     _check_requires_grad, _check_shape, _finish, _no_out, _number, _parse_size,
                     _put, _scalar_type, _size_kw)

__all__ = ["zeros", "ones", "empty", "full", "arange", "linspace", "eye", "zeros_like",
           "ones_like", "empty_like", "full_like", "_like", "_HOST_BYTES"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float

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
        if dtype.category == D.INTEGRAL:  # PyTorch's accumulate type for integers is int64
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
    if dtype.category == D.FLOATING:  # computed in the dtype itself, as PyTorch's CPU kernel
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

