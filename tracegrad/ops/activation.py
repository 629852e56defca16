"""Activation functions as registered ops: gelu (exact and tanh), silu, leaky_relu, elu (with
PyTorch's scale/input_scale, so selu and celu are elu), softplus (beta, threshold), hardtanh
(relu6 is hardtanh(0, 6)). Each has PyTorch's grad_fn (``GeluBackward0``, ...); rules are
tracegrad ops, so they differentiate again (the piecewise ones have their kinks flagged).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._registry import Op, Sample, apply, register
from .elementwise import UNARY_SAMPLES, exp, sigmoid, tanh, where
from .math import erf

__all__ = ["gelu", "silu", "leaky_relu", "elu", "softplus", "hardtanh", "METHODS"]

_S = [Sample((5,)), Sample((2, 3))]
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_K = math.sqrt(2.0 / math.pi)
_C = 0.044715


def _gelu_impl(x, *, approximate):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


def _gelu_grad(g, x, approximate):
    if approximate == "tanh":
        t = tanh(_K * (x + _C * x * x * x))
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K * (1 + 3 * _C * x * x))
    return g * (0.5 * (1 + erf(x * _INV_SQRT2)) + x * _INV_SQRT_2PI * exp(-0.5 * x * x))


_gelu = register(Op("gelu", _gelu_impl, promote="float", grad_name="GeluBackward0",
                    vjp=lambda g, x, *, out, approximate: _gelu_grad(g, x, approximate),
                    samples=[Sample((5,), approximate="none"), Sample((2, 3), approximate="tanh")]))


def gelu(input, approximate="none"):  # noqa: A002
    """``x * Phi(x)`` (``approximate='none'``) or its tanh approximation (``'tanh'``)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh.")
    return apply(_gelu, input, approximate=approximate)


_silu = register(Op("silu", jax.nn.silu, promote="float", grad_name="SiluBackward0",
                    vjp=lambda g, x, *, out: g * sigmoid(x) * (1 + x * (1 - sigmoid(x))),
                    samples=_S))


def silu(input):  # noqa: A002
    """``x * sigmoid(x)``."""
    return apply(_silu, input)


_leaky = register(Op(
    "leaky_relu", lambda x, *, negative_slope: jnp.where(x > 0, x, x * negative_slope),
    promote=None, grad_name="LeakyReluBackward0", twice_differentiable=False,
    vjp=lambda g, x, *, out, negative_slope: where(x > 0, g, g * negative_slope),
    samples=[Sample((5,), negative_slope=0.01), Sample((2, 3), negative_slope=0.2)]))


def leaky_relu(input, negative_slope=0.01):  # noqa: A002
    return apply(_leaky, input, negative_slope=negative_slope)


def _elu_impl(x, *, alpha, scale, input_scale):
    return jnp.where(x > 0, scale * x, scale * alpha * jnp.expm1(x * input_scale))


_elu = register(Op(
    "elu", _elu_impl, promote="float", twice_differentiable=False,
    grad_name=lambda p, a: "EluBackward0" if p["input_scale"] == 1.0 else "CeluBackward0",
    vjp=lambda g, x, *, out, alpha, scale, input_scale: where(
        x > 0, g * scale, g * (scale * alpha * input_scale) * exp(x * input_scale)),
    samples=[Sample((5,), alpha=1.0, scale=1.0, input_scale=1.0),
             Sample((2, 3), alpha=1.6732632423543772, scale=1.0507009873554805, input_scale=1.0),
             Sample((4,), alpha=0.5, scale=1.0, input_scale=2.0)]))


def elu(input, alpha=1.0, scale=1.0, input_scale=1.0):  # noqa: A002
    """``scale * x`` for ``x > 0``, else ``scale * alpha * (exp(input_scale * x) - 1)``."""
    return apply(_elu, input, alpha=alpha, scale=scale, input_scale=input_scale)


def _softplus_impl(x, *, beta, threshold):
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.log1p(jnp.exp(bx)) / beta)


_softplus = register(Op(
    "softplus", _softplus_impl, promote="float", grad_name="SoftplusBackward0",
    vjp=lambda g, x, *, out, beta, threshold: where(x * beta > threshold, g, g * sigmoid(x * beta)),
    samples=[Sample((5,), beta=1.0, threshold=20.0), Sample((2, 3), beta=2.0, threshold=3.0)]))


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (as PyTorch)."""
    return apply(_softplus, input, beta=beta, threshold=threshold)


_hardtanh = register(Op(
    "hardtanh", lambda x, *, min_val, max_val: jnp.clip(x, min_val, max_val), promote=None,
    grad_name="HardtanhBackward0", twice_differentiable=False,
    vjp=lambda g, x, *, out, min_val, max_val: where((x > min_val) & (x < max_val), g, 0.0),
    samples=[Sample((5,), min_val=-1.0, max_val=1.0), Sample((2, 3), min_val=0.0, max_val=1.5)]))


def hardtanh(input, min_val=-1.0, max_val=1.0):  # noqa: A002
    """``clamp(x, min_val, max_val)`` with a zero gradient outside ``(min_val, max_val)``."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return apply(_hardtanh, input, min_val=min_val, max_val=max_val)


for _op, _fn in ((_gelu, gelu), (_silu, silu), (_leaky, leaky_relu), (_elu, elu),
                 (_softplus, softplus), (_hardtanh, hardtanh)):
    _op.public = _fn
    _fn.op = _op

METHODS = {}
