"""Elementwise ops: arithmetic, transcendental functions, comparisons, where, clamp.

Each op is one line (or a few): its jax impl and its VJP rule in tracegrad ops. The
``unary``/``binary`` factories supply promotion, the PyTorch grad_fn name, the public
function and the test samples; broadcasting is undone once, in ``OpNode``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _creation
from .. import _dtype as D
from .._errors import SCALAR_TYPE_NAME as _CPP_NAME
from .._tensor import Tensor
from ._registry import Const, Op, Sample, apply, register
from .indexing import nonzero

__all__ = ["abs", "absolute", "add", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor",
           "clamp", "clip", "cos", "div", "divide", "eq", "exp", "expm1", "ge",
           "greater", "greater_equal", "gt", "isfinite", "isnan", "le", "less",
           "less_equal", "log", "log1p", "logical_and", "logical_not", "logical_or",
           "logical_xor", "lt", "maximum", "minimum", "mul", "multiply", "ne", "neg",
           "negative", "not_equal", "pow", "reciprocal", "relu", "rsqrt", "sigmoid",
           "sign", "sin", "sqrt", "square", "sub", "subtract", "tanh", "true_divide",
           "where"]

UNARY_SAMPLES = [Sample(()), Sample((5,)), Sample((2, 3))]
BINARY_SAMPLES = [Sample((4,), (4,)), Sample((2, 3), (3,)), Sample((2, 1), (1, 3)),
                  Sample((), (2, 2)), Sample((3,), Const(2.5)), Sample(Const(1.5), (3,))]


def _public(op, fn, doc):
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = doc
    fn.op = op
    op.public = fn
    return fn


def unary(name, impl, vjp, *, promote="float", samples=UNARY_SAMPLES, **kw):
    """Register a one-input elementwise op; returns its public function ``f(input)``."""
    op = register(Op(name, impl, vjp=vjp, promote=promote, samples=samples, **kw))
    return _public(op, lambda input: apply(op, input),
                   f"Elementwise ``{name}`` of ``input`` (as ``torch.{name}``).")


def binary(name, impl, vjp, *, promote="all", samples=BINARY_SAMPLES, **kw):
    """Register a two-input broadcasting op; returns its public function ``f(input, other)``."""
    op = register(Op(name, impl, vjp=vjp, promote=promote, samples=samples, **kw))
    return _public(op, lambda input, other: apply(op, input, other),
                   f"Elementwise ``{name}`` of ``input`` and ``other`` with broadcasting "
                   f"and PyTorch's type promotion (as ``torch.{name}``).")


def compare(name, impl, samples=BINARY_SAMPLES[:3]):
    """A comparison: bool result, no gradient."""
    op = register(Op(name, impl, promote="all", samples=samples))
    return _public(op, lambda input, other: apply(op, input, other),
                   f"Elementwise ``{name}`` comparison; returns a bool tensor (no gradient).")


# --------------------------------------------------------------------------- arithmetic
_add = binary("add", jnp.add, (lambda g, x, y, *, out: g, lambda g, x, y, *, out: g))
sub = binary("sub", jnp.subtract, (lambda g, x, y, *, out: g, lambda g, x, y, *, out: -g))
mul = binary("mul", jnp.multiply, (lambda g, x, y, *, out: g * y, lambda g, x, y, *, out: g * x))
div = binary("div", jnp.true_divide,
             (lambda g, x, y, *, out: g / y, lambda g, x, y, *, out: -g * x / (y * y)),
             promote="float")
neg = unary("neg", jnp.negative, lambda g, x, *, out: -g, promote=None)


def _add_alpha(x, y, alpha):  # a sample call that runs on torch tensors too
    return x.add(y, alpha=alpha)


# input + alpha * other as one op (not mul then add): optimizers run p.add_(g, alpha=-lr) on
# every parameter at every step, and one pass over the weights is half the memory traffic
_add_scaled = register(Op(
    "add_scaled", lambda x, y, alpha: x + alpha * y, promote="all", grad_name="AddBackward0",
    aten="aten::add",
    vjp=(lambda g, x, y, alpha, *, out: g, lambda g, x, y, alpha, *, out: g * alpha, None),
    samples=[Sample((4,), (4,), Const(0.5), call=_add_alpha),
             Sample((2, 3), (3,), Const(-2.0), call=_add_alpha),
             Sample((3,), Const(1.5), Const(2.0), call=_add_alpha)]))


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting (as ``torch.add``)."""
    if alpha != 1:
        _check_alpha(input, other, alpha)
        return apply(_add_scaled, input, other, alpha)
    return _add(input, other)


def _check_alpha(input, other, alpha):
    if isinstance(alpha, float) and D.result_type(input, other).category != D.FLOATING:
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating "
                           "point number.")


_add_scaled.public = add


add.op = _add.op
_add.op.public = _add


def subtract(input, other, *, alpha=1):
    return sub(input, mul(other, alpha) if alpha != 1 else other)


multiply, divide, negative, true_divide = mul, div, neg, div


def _pow_dx(g, x, y):
    if not hasattr(y, "shape") and y == 0:
        return g * 0
    return g * y * pow(x, y - 1)


def _pow_dy(g, x, y, out):
    # d/dy x**y = x**y log x; PyTorch masks x == 0 (where the limit is 0 for y >= 0)
    return g * where(x == 0, 0.0, out * log(where(x == 0, 1.0, x)))


def _pow_name(params, args):
    if not isinstance(args[1], Tensor):
        return "PowBackward0"
    return "PowBackward1" if isinstance(args[0], Tensor) else "PowBackward2"


pow = binary("pow", jnp.power,  # noqa: A001
             (lambda g, x, y, *, out: _pow_dx(g, x, y), lambda g, x, y, *, out: _pow_dy(g, x, y, out)),
             grad_name=_pow_name, domain=(0.5, 2.0),
             samples=[Sample((4,), Const(3)), Sample((4,), Const(0.5)), Sample((2, 3), (3,)),
                      Sample((3,), Const(0)), Sample(Const(2.0), (3,))])

# --------------------------------------------------------------------------- transcendental
exp = unary("exp", jnp.exp, lambda g, x, *, out: g * out)
log = unary("log", jnp.log, lambda g, x, *, out: g / x, domain=(0.5, 3.0))
log1p = unary("log1p", jnp.log1p, lambda g, x, *, out: g / (x + 1), domain=(0.0, 3.0),
              grad_name="Log1PBackward0")
expm1 = unary("expm1", jnp.expm1, lambda g, x, *, out: g * (out + 1))
sqrt = unary("sqrt", jnp.sqrt, lambda g, x, *, out: g / (2 * out), domain=(0.5, 3.0))
rsqrt = unary("rsqrt", jax.lax.rsqrt, lambda g, x, *, out: -0.5 * g * out * out * out,
              domain=(0.5, 3.0))
sin = unary("sin", jnp.sin, lambda g, x, *, out: g * cos(x))
cos = unary("cos", jnp.cos, lambda g, x, *, out: -g * sin(x))
tanh = unary("tanh", jnp.tanh, lambda g, x, *, out: g * (1 - out * out))
# sigmoid has its own impl and rule (not 1/(1+exp(-x))) for stability at large |x|
sigmoid = unary("sigmoid", jax.nn.sigmoid, lambda g, x, *, out: g * out * (1 - out))
relu = unary("relu", jax.nn.relu, lambda g, x, *, out: g * (out > 0), promote=None,
             domain=(-2.0, 2.0), twice_differentiable=False)
abs = unary("abs", jnp.abs, lambda g, x, *, out: g * sign(x), promote=None,  # noqa: A001
            twice_differentiable=False)
sign = unary("sign", jnp.sign, lambda g, x, *, out: g * 0, promote=None)
reciprocal = unary("reciprocal", jnp.reciprocal, lambda g, x, *, out: -g * out * out,
                   domain=(0.5, 3.0))
square = unary("square", jnp.square, lambda g, x, *, out: 2 * g * x, promote=None,
               grad_name="PowBackward0")  # PyTorch computes square as pow(x, 2)
absolute = abs


def _clamp_mask(x, min, max):  # noqa: A002
    m = None
    if min is not None:
        m = x >= min
    if max is not None:
        m = (x <= max) if m is None else (m & (x <= max))
    return m


def _clamp_impl(x, *, min, max):  # noqa: A002
    return jnp.clip(x, min, max)


_clamp = register(Op(
    "clamp", _clamp_impl, promote=None, grad_name="ClampBackward1",
    vjp=lambda g, x, *, out, min, max: g * _clamp_mask(x, min, max),  # noqa: A002
    twice_differentiable=False,
    samples=[Sample((6,), min=-0.5, max=0.5), Sample((2, 3), min=0.1, max=None),
             Sample((4,), min=None, max=0.0)]))


def clamp(input, min=None, max=None):  # noqa: A002
    """Clamp ``input`` into ``[min, max]`` (scalars or tensors, as ``torch.clamp``)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    dt = D.result_type(input, min, max)
    if dt is not input.dtype:  # an integer tensor clamped to float bounds: PyTorch's float result
        input = input.to(dt)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return apply(_clamp, input, min=min, max=max)


clamp.op = _clamp
_clamp.public = clamp
clip = clamp


def _max_rule(g, x, y, first):
    # PyTorch: equal inputs share the gradient half and half
    win = (x > y) if first else (y > x)
    return where(x == y, g / 2, where(win, g, 0.0))


maximum = binary("maximum", jnp.maximum, (lambda g, x, y, *, out: _max_rule(g, x, y, True),
                                          lambda g, x, y, *, out: _max_rule(g, x, y, False)),
                 samples=BINARY_SAMPLES[:4], twice_differentiable=False)
minimum = binary("minimum", jnp.minimum, (lambda g, x, y, *, out: _max_rule(g, y, x, True),
                                          lambda g, x, y, *, out: _max_rule(g, y, x, False)),
                 samples=BINARY_SAMPLES[:4], twice_differentiable=False)

_where = register(Op(
    "where", jnp.where, promote="all", promote_from=1,
    vjp=(None, lambda g, c, x, y, *, out: where(c, g, 0.0),
         lambda g, c, x, y, *, out: where(c, 0.0, g)),
    samples=[Sample(Const([True, False, True]), (3,), (3,)),
             Sample(Const([[True], [False]]), (2, 3), (3,)),
             Sample(Const([True, False]), (2,), Const(0.0))]))


def where(condition, input=None, other=None):
    """``input`` where ``condition`` else ``other`` (as ``torch.where``)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cd = getattr(condition, "dtype", None)  # (rules may pass a Python bool)
    if cd is None:
        return apply(_where, condition, input, other)
    if cd is not D.bool and cd is not D.uint8:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {_CPP_NAME[cd.name]}")
    if not hasattr(input, "_data") and not hasattr(other, "_data"):
        # two Python scalars: PyTorch's result type (a float is the default dtype), not jax's
        input = _scalar_tensor(input, D.result_type(input, other), condition.device)
    return apply(_where, condition, input, other)


def _scalar_tensor(value, dtype, device):
    return _creation.tensor(value, dtype=dtype, device=device)


where.op = _where
_where.public = where

# --------------------------------------------------------------------------- comparisons
eq = compare("eq", jnp.equal)
ne = compare("ne", jnp.not_equal)
lt = compare("lt", jnp.less)
le = compare("le", jnp.less_equal)
gt = compare("gt", jnp.greater)
ge = compare("ge", jnp.greater_equal)
logical_and = compare("logical_and", jnp.logical_and)
logical_or = compare("logical_or", jnp.logical_or)
logical_xor = compare("logical_xor", jnp.logical_xor)
# bitwise ops take bool/integer tensors only (as in PyTorch), so their samples are bool
BOOL_SAMPLES = [Sample(Const([True, False, True]), Const([True, True, False])),
                Sample(Const([[True], [False]]), Const([True, False, True]))]
bitwise_and = compare("bitwise_and", jnp.bitwise_and, BOOL_SAMPLES)
bitwise_or = compare("bitwise_or", jnp.bitwise_or, BOOL_SAMPLES)
bitwise_xor = compare("bitwise_xor", jnp.bitwise_xor, BOOL_SAMPLES)


def predicate(name, impl, doc, samples=UNARY_SAMPLES[:2]):
    """A one-input op with no gradient (bool result for the predicates)."""
    op = register(Op(name, impl, samples=samples))
    return _public(op, lambda input: apply(op, input), doc)


logical_not = predicate("logical_not", jnp.logical_not,
                        "Elementwise logical not; returns a bool tensor.")
bitwise_not = predicate("bitwise_not", jnp.invert,
                        "Elementwise bitwise not (logical not for bool tensors).",
                        samples=[Sample(Const([True, False])), Sample(Const([3, -1]))])
isnan = predicate("isnan", jnp.isnan, "Elementwise isnan.")
isfinite = predicate("isfinite", jnp.isfinite, "Elementwise isfinite.")
greater, greater_equal, less, less_equal, equal_, not_equal = gt, ge, lt, le, eq, ne
