"""PyTorch's CPU random kernels, on the host with numpy: each function takes a ``Generator``
and returns a numpy array with the numbers PyTorch 2.13 draws for the same generator state
(aten/src/ATen/native/cpu/DistributionTemplates.h, core/DistributionsHelper.h,
core/TransformationHelper.h, native/TensorFactories.cpp).

- uniform: ``(bits & (2**digits - 1)) * 2**-digits`` from one ``random()`` (float32, 24 bits) or
  one ``random64()`` (float64, 53 bits), then ``x * (to - from) + from`` as one fused
  multiply-add.
- normal, 16 or more elements of a contiguous tensor: all the uniforms first, then Box-Muller
  on blocks of 16 (``u1 = 1 - u[j]``, ``u2 = u[j + 8]``: cos to ``j``, sin to ``j + 8``); a size
  that is not a multiple of 16 draws 16 fresh uniforms for the last 16 places and redoes them.
  float32 uses avx_mathfun's log and sincos (see ``avx_mathfun``), float64 the C library's;
  float16/bfloat16 run the float32 path (uniforms drawn for the whole blocks only) and round.
- normal, fewer elements (or a non-contiguous tensor): one double Box-Muller pair per two
  elements (``log1p``, two ``random64()``), the sin half cached in the generator for the next
  element, even across calls.
- integers: ``random() % range + low`` (``random64()`` when the range needs 33+ bits);
  ``randperm``: the swaps of Fisher-Yates with ``random() % (n - i)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype as D
from .avx_mathfun import fma32, fma64, log256_ps, sincos256_ps

__all__ = ["uniform", "normal", "random_from_to", "random_bits", "randperm", "bernoulli_scalar",
           "bernoulli_tensor", "exponential", "multinomial"]

_f32 = np.float32
# bits of a uniform float (float16/bfloat16 draw float32's) and mantissa digits (random_'s range)
_DIGITS = {"float64": 53, "float32": 24, "float16": 24, "bfloat16": 24}
_MANTISSA = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
_TWO_PI = 2.0 * math.pi


def _unit(gen, n, dtype):
    """``n`` uniforms in [0, 1) as PyTorch's ``uniform_real_distribution<T>(0, 1)`` draws them,
    in float64 for float64 and in float32 otherwise (PyTorch's accumulate type)."""
    digits = _DIGITS[dtype.name]
    if digits == 53:
        bits = gen._random64(n) & np.uint64((1 << 53) - 1)
        return bits.astype(np.float64) * (1.0 / (1 << 53))
    bits = gen._random(n) & np.uint32((1 << digits) - 1)
    return bits.astype(np.float32) * _f32(1.0 / (1 << digits))


def uniform(gen, n, dtype, low=0.0, high=1.0):
    """``Tensor.uniform_(low, high)``: the bounds as float64 for float64, else as float32."""
    x = _unit(gen, n, dtype)
    if dtype is D.float64:
        lo, hi = np.float64(low), np.float64(high)
        return x if (lo, hi) == (0.0, 1.0) else fma64(x, hi - lo, lo)
    lo, hi = _f32(low), _f32(high)
    if dtype is D.float32:
        return fma32(x, hi - lo, lo)
    # float16/bfloat16: computed in float with float bounds, rounded; a value that rounds up
    # to ``high`` becomes ``low``, so the range stays half-open
    out = fma32(x, hi - lo, lo).astype(dtype.np)
    out[out == np.asarray(hi).astype(dtype.np)] = np.asarray(lo).astype(dtype.np)
    return out


def _fill_16_avx2(u, mean, std):
    """normal_fill_16_AVX2 on rows of 16 float32 uniforms (float32 mean and std)."""
    u = u.reshape(-1, 16)
    radius = np.sqrt(_f32(-2.0) * log256_ps(_f32(1.0) - u[:, :8]))
    s, c = sincos256_ps(_f32(_TWO_PI) * u[:, 8:])
    return np.concatenate([fma32(radius * c, std, mean), fma32(radius * s, std, mean)], axis=1)


def _log(x):
    # the C library's log: numpy's own float64 log rounds differently in ~1 of 300 cases
    return np.fromiter(map(math.log, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def _log1p(x):
    return np.fromiter(map(math.log1p, x.tolist()), np.float64, x.size)


def _fill_16_double(u, mean, std):
    """normal_fill_16<double> on rows of 16 float64 uniforms."""
    u = u.reshape(-1, 16)
    radius = np.sqrt(-2.0 * _log(1.0 - u[:, :8]))
    theta = _TWO_PI * u[:, 8:]
    a, b = radius * np.cos(theta), radius * np.sin(theta)
    if (mean, std) != (0.0, 1.0):
        a, b = fma64(a, std, mean), fma64(b, std, mean)
    return np.concatenate([a, b], axis=1)


def normal(gen, n, dtype, mean=0.0, std=1.0, contiguous=True):
    """``Tensor.normal_(mean, std)`` on ``n`` elements (see the module docstring for the two
    paths)."""
    if n >= 16 and contiguous and dtype in (D.float32, D.float64):
        if dtype is D.float32:
            fill, m, s = _fill_16_avx2, _f32(mean), _f32(std)
        else:
            fill, m, s = _fill_16_double, float(mean), float(std)
        out = np.empty(n, dtype.np)
        whole = n - n % 16
        out[:whole] = fill(_unit(gen, n, dtype)[:whole], m, s).ravel()
        if n % 16:
            out[n - 16:] = fill(_unit(gen, 16, dtype), m, s).ravel()
        return out
    if n >= 16 and contiguous and dtype in (D.float16, D.bfloat16):
        # float16/bfloat16: the float32 path in a float buffer, rounded at the end; only the
        # whole blocks' uniforms are drawn before the 16 fresh ones of the tail
        out = np.empty(n, np.float32)
        whole, m, s = n - n % 16, _f32(mean), _f32(std)
        out[:whole] = _fill_16_avx2(_unit(gen, whole, D.float32), m, s).ravel()
        if n % 16:
            out[n - 16:] = _fill_16_avx2(_unit(gen, 16, D.float32), m, s).ravel()
        return out.astype(dtype.np)
    return _normal_scalar(gen, n, mean, std).astype(dtype.np)


def _normal_scalar(gen, n, mean, std):
    """``normal_distribution<double>(mean, std)`` drawn ``n`` times, with the generator's cache."""
    out = np.empty(n, np.float64)
    k = 0
    if n and gen._normal is not None:
        out[0], gen._normal, k = gen._normal, None, 1
    pairs = (n - k + 1) // 2
    if pairs:
        u = gen._random64(2 * pairs) & np.uint64((1 << 53) - 1)
        u = u.astype(np.float64) * (1.0 / (1 << 53))
        u1, u2 = u[0::2], u[1::2]
        r = np.sqrt(-2.0 * _log1p(-u2))
        theta = 2.0 * math.pi * u1
        both = np.empty(2 * pairs, np.float64)
        both[0::2], both[1::2] = r * np.cos(theta), r * np.sin(theta)
        out[k:] = both[:n - k]
        if (n - k) % 2:
            gen._normal = float(both[-1])
    if (mean, std) != (0.0, 1.0):
        out = fma64(out, float(std), float(mean))
    return out


def random_from_to(gen, n, dtype, low, high):
    """``Tensor.random_(low, high)`` / ``randint``: ``random() % range + low``, or
    ``random64()`` for a range of 2**32 or more (int64, float32, float64, bfloat16 only)."""
    span = high - low
    if span >= 1 << 32 and dtype in (D.int64, D.float64, D.float32, D.bfloat16):
        v = (gen._random64(n) % np.uint64(span)).astype(np.int64)
    else:
        v = (gen._random(n).astype(np.uint64) % np.uint64(span)).astype(np.int64)
    return (v + np.int64(low)).astype(dtype.np)


def random_bits(gen, n, dtype):
    """``Tensor.random_()`` with no bounds: ``[0, 2**mantissa]`` for floats, ``[0, max]`` for
    integers, 0/1 for bool."""
    if dtype is D.bool:
        return (gen._random(n) & np.uint32(1)).astype(np.bool_)
    if dtype in (D.float64, D.int64):
        v = gen._random64(n)
    else:
        v = gen._random(n).astype(np.uint64)
    if dtype.is_floating_point:
        mod = (1 << _MANTISSA[dtype.name]) + 1
    else:
        mod = int(np.iinfo(dtype.np).max) + 1
    return (v % np.uint64(mod)).astype(dtype.np)


def randperm(gen, n):
    """``randperm(n)`` (for ``n`` below 2**32 / 20, as PyTorch's small-n path)."""
    if n >= (2 ** 32 - 1) // 20:
        raise NotImplementedError("randperm: n >= 2**32 / 20 is not supported by tracegrad")
    perm = list(range(n))
    if n > 1:
        z = (gen._random(n - 1).astype(np.int64) % np.arange(n, 1, -1, dtype=np.int64))
        z += np.arange(n - 1, dtype=np.int64)
        for i, j in enumerate(z.tolist()):
            perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def bernoulli_scalar(gen, n, p):
    """``Tensor.bernoulli_(p)`` with a number ``p``: a double uniform below ``p``."""
    return _unit(gen, n, D.float64) < float(p)


def bernoulli_tensor(gen, p):
    """``Tensor.bernoulli_(p)`` / ``bernoulli(p)`` with a tensor of probabilities (numpy array):
    one uniform each, in the probabilities' precision."""
    dt = D.float64 if p.dtype == np.float64 else D.float32
    return _unit(gen, p.size, dt).reshape(p.shape) < p.astype(dt.np)


def exponential(gen, n, dtype, lambd):
    """``Tensor.exponential_(lambd)``: ``-1 / lambd * log1p(-u)`` with a double uniform."""
    return ((-1.0 / lambd) * _log1p(-_unit(gen, n, D.float64))).astype(dtype.np)


def multinomial(gen, probs, n, replacement):
    """``multinomial(probs, n, replacement)`` on a 2-D numpy array of weights (rows).

    Without replacement, or for one sample, PyTorch's Gumbel trick: ``q = exponential_(1)`` in
    the weights' dtype, then the top ``n`` of ``probs / q`` (argmax for one). With replacement:
    per row the cumulative sums in the dtype, divided by the total, and for each sample a double
    uniform placed by a binary search (the first slot whose cumulative weight is not below it)."""
    rows, cats = probs.shape
    if not replacement or n == 1:
        q = exponential(gen, probs.size, D.from_np(probs.dtype), 1.0).reshape(probs.shape)
        with np.errstate(divide="ignore"):
            vals = probs / q
        if n == 1:
            return np.argmax(vals, axis=-1).reshape(rows, 1)
        return np.argsort(-vals, axis=-1, kind="stable")[:, :n]
    out = np.empty((rows, n), np.int64)
    for r in range(rows):
        cum = np.cumsum(probs[r])  # sequential, in the dtype, as the C loop
        total = cum[-1]
        if total > 0 or 0.99999 < total < 1.00001:
            cum = cum / total
        out[r] = np.searchsorted(cum, _unit(gen, n, D.float64), side="left")
    return out
