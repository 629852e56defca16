"""Tests for tracegrad._creation.avx_mathfun without torch: the fused multiply-adds round once
(checked exactly with fractions), and the ported AVX2 log and sincos are the accurate float32
functions they port (a few ulps from the true values)."""
from fractions import Fraction

import numpy as np

from tracegrad._creation.avx_mathfun import fma32, fma64, log256_ps, sincos256_ps


def _exact32(a, b, c):
    """The float32 nearest to a * b + c (ties to even), from the exact rational value."""
    ex = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    lo = np.float32(float(ex))             # within an ulp; step to the nearest by comparing
    best = min((np.nextafter(lo, np.float32(-np.inf)), lo, np.nextafter(lo, np.float32(np.inf))),
               key=lambda v: (abs(Fraction(float(v)) - ex),
                              int(np.asarray(v).view(np.uint32)) & 1))
    return best


def test_fma32_rounds_once():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(3000).astype(np.float32)
    b = rng.standard_normal(3000).astype(np.float32)
    c = (-(a.astype(np.float64) * b) * (1 + rng.standard_normal(3000) * 1e-6)).astype(np.float32)
    # a halfway case on purpose: (2**-24 (1 + 2**-15)) (1 - 2**-15) + (1 + 2**-23) is just below
    # the float32 midpoint 1 + 2**-23 + 2**-24, and the double sum rounds onto the midpoint, where
    # a plain double-then-float rounding would go up (to even); the single rounding goes down
    ta = np.array([2.0 ** -24 * (1 + 2.0 ** -15)], np.float32)
    tb = np.array([1 - 2.0 ** -15], np.float32)
    tc = np.array([1 + 2.0 ** -23], np.float32)
    assert (ta.astype(np.float64) * tb + tc)[0].astype(np.float32) == np.float32(1 + 2.0 ** -22)
    assert fma32(ta, tb, tc)[0] == np.float32(1 + 2.0 ** -23) == _exact32(ta[0], tb[0], tc[0])
    out = fma32(a, b, c)
    for x, y, z, o in zip(a, b, c, out):
        assert o == _exact32(x, y, z)


def test_fma64_rounds_once():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(3000) * 10.0 ** rng.integers(-5, 5, 3000)
    b = rng.standard_normal(3000)
    c = -a * b * (1 + rng.standard_normal(3000) * 1e-9)     # heavy cancellation
    out = fma64(a, b, c)
    for x, y, z, o in zip(a.tolist(), b.tolist(), c.tolist(), out.tolist()):
        assert o == float(Fraction(x) * Fraction(y) + Fraction(z))


def _ulps(got, want):
    want32 = want.astype(np.float32)
    spacing = np.spacing(np.abs(want32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


def test_log256_ps_is_an_accurate_log():
    x = np.random.default_rng(2).random(100000).astype(np.float32) + np.float32(2 ** -24)
    assert _ulps(log256_ps(x), np.log(x.astype(np.float64))).max() <= 4
    assert np.isnan(log256_ps(np.array([0.0, -1.0], np.float32))).all()


def test_sincos256_ps_is_an_accurate_sin_and_cos():
    x = (np.random.default_rng(3).random(100000) * 2 * np.pi).astype(np.float32)
    s, c = sincos256_ps(x)
    x64 = x.astype(np.float64)
    assert np.abs(s - np.sin(x64)).max() < 2e-7 and np.abs(c - np.cos(x64)).max() < 2e-7
