"""More elementwise math, built with the ``unary``/``binary`` factories of ``elementwise``:
erf, erfc, floor, ceil, round, trunc, frac, atan2, hypot, fmin, fmax, lerp.

Each is one declaration: impl in jax, VJP in tracegrad ops, PyTorch's grad_fn name from the
factory (``ErfBackward0``, ``Atan2Backward0``, ...). Rounding ops have a zero gradient
(PyTorch's), and keep integer inputs integer.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._registry import Const, Op, Sample, apply, register
from .elementwise import BINARY_SAMPLES, UNARY_SAMPLES, binary, exp, isnan, unary, where

__all__ = ["erf", "erfc", "floor", "ceil", "round", "trunc", "fix", "frac", "atan2", "arctan2",
           "hypot", "fmin", "fmax", "lerp", "METHODS"]

_2_SQRT_PI = 2.0 / math.sqrt(math.pi)

erf = unary("erf", jax.scipy.special.erf, lambda g, x, *, out: g * _2_SQRT_PI * exp(-x * x))
erfc = unary("erfc", jax.scipy.special.erfc, lambda g, x, *, out: -g * _2_SQRT_PI * exp(-x * x))

# rounding: zero gradient; samples kept away from the jumps (finite differences would see them)
_ROUND_SAMPLES = [Sample((5,)), Sample((2, 3))]  # (a jump within eps of a sample: ~1e-6)
floor = unary("floor", jnp.floor, lambda g, x, *, out: g * 0, promote=None,
              samples=_ROUND_SAMPLES)
ceil = unary("ceil", jnp.ceil, lambda g, x, *, out: g * 0, promote=None,
             samples=_ROUND_SAMPLES)
trunc = unary("trunc", jnp.trunc, lambda g, x, *, out: g * 0, promote=None,
              samples=_ROUND_SAMPLES)
_round = unary("round", jnp.round, lambda g, x, *, out: g * 0, promote=None,  # half to even
               samples=_ROUND_SAMPLES)
frac = unary("frac", lambda x: x - jnp.trunc(x), lambda g, x, *, out: g, promote=None,
             domain=(0.1, 0.9))
fix = trunc


def _round_decimals_impl(x, *, decimals):
    s = 10.0 ** decimals
    return jnp.round(x * s) / s


_round_dec = register(Op("round_decimals", _round_decimals_impl, grad_name="RoundBackward1",
                         vjp=lambda g, x, *, out, decimals: g * 0,
                         domain=(0.1201, 0.1249),  # between two jumps of round(x, 2)
                         samples=[Sample((4,), decimals=2)]))


def round(input, *, decimals=0):  # noqa: A001
    """Round half to even (as ``torch.round``); ``decimals`` rounds to that many places."""
    if decimals:
        return apply(_round_dec, input, decimals=int(decimals))
    return _round(input)


round.op = _round.op
_round_dec.public = lambda input, *, decimals: round(input, decimals=decimals)


def _atan2_d(g, y, x, first):
    d = x * x + y * y
    return g * x / d if first else -g * y / d


atan2 = binary("atan2", jnp.arctan2, (lambda g, y, x, *, out: _atan2_d(g, y, x, True),
                                      lambda g, y, x, *, out: _atan2_d(g, y, x, False)),
               promote="float", samples=BINARY_SAMPLES[:4])
arctan2 = atan2
hypot = binary("hypot", jnp.hypot, (lambda g, x, y, *, out: g * x / out,
                                    lambda g, x, y, *, out: g * y / out),
               samples=BINARY_SAMPLES[:4])


def _fsel(x, y, ge):
    """Where ``fmax`` (``ge``) / ``fmin`` takes ``x``: PyTorch's masks (ties go to ``x``; a NaN
    ``y`` is skipped)."""
    return ((x >= y) if ge else (x <= y)) | isnan(y)


fmax = binary("fmax", jnp.fmax, (lambda g, x, y, *, out: where(_fsel(x, y, True), g, 0.0),
                                 lambda g, x, y, *, out: where(_fsel(x, y, True), 0.0, g)),
              samples=BINARY_SAMPLES[:4], twice_differentiable=False)
fmin = binary("fmin", jnp.fmin, (lambda g, x, y, *, out: where(_fsel(x, y, False), g, 0.0),
                                 lambda g, x, y, *, out: where(_fsel(x, y, False), 0.0, g)),
              samples=BINARY_SAMPLES[:4], twice_differentiable=False)


def _lerp_impl(x, end, w):
    # PyTorch's formula: from the nearer end, so lerp(a, b, 1) is exactly b
    d = end - x
    return jnp.where(jnp.abs(w) < 0.5, x + w * d, end - d * (1 - w))


_lerp = register(Op(
    "lerp", _lerp_impl, promote="all",
    vjp=(lambda g, x, end, w, *, out: g * (1 - w), lambda g, x, end, w, *, out: g * w,
         lambda g, x, end, w, *, out: g * (end - x)),
    samples=[Sample((3,), (3,), Const(0.3)), Sample((2, 3), (3,), (2, 1)),
             Sample((4,), (4,), Const(0.8))]))


def lerp(input, end, weight):  # noqa: A002
    """``input + weight * (end - input)`` (``weight`` a scalar or tensor), as ``torch.lerp``."""
    return apply(_lerp, input, end, weight)


lerp.op = _lerp
_lerp.public = lerp

METHODS = dict(erf=erf, erfc=erfc, floor=floor, ceil=ceil, round=round, trunc=trunc, fix=fix,
               frac=frac, atan2=atan2, arctan2=atan2, hypot=hypot, fmin=fmin, fmax=fmax,
               lerp=lerp)
INPLACE = ("erf", "erfc", "floor", "ceil", "round", "trunc", "fix", "frac", "atan2", "arctan2",
           "hypot", "lerp")
