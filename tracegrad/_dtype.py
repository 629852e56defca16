"""dtypes with PyTorch's names, aliases and type-promotion rules, backed by numpy/jax dtypes.

JAX turns off float64 unless ``jax_enable_x64`` is set; tracegrad turns it on at import so
that ``float64`` (needed by gradcheck) is real, and then chooses every dtype explicitly so that
Python floats still become float32 and Python ints int64, as in PyTorch.
"""
from __future__ import annotations

import functools

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["dtype", "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
           "float32", "float64", "float", "double", "half", "long", "int", "short",
           "get_default_dtype", "set_default_dtype", "promote_types", "result_type"]

# dtype.category: the kinds PyTorch's type promotion orders (bool < integral < floating)
BOOLEAN, INTEGRAL, FLOATING = 0, 1, 2


class dtype:
    """A tensor element type (``tracegrad.float32`` ...). Compare with ``==`` or ``is``."""

    __slots__ = ("name", "np", "category", "itemsize", "_rank")

    def __init__(self, name, np_dtype, category, rank):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category
        self.itemsize = self.np.itemsize
        self._rank = rank

    @property
    def is_floating_point(self):
        return self.category == FLOATING

    @property
    def is_complex(self):
        return False

    @property
    def is_signed(self):
        return self.name != "uint8" and self.name != "bool"

    def __repr__(self):
        return "tracegrad." + self.name

    def __reduce__(self):
        return self.name


bool = dtype("bool", np.bool_, BOOLEAN, 0)  # noqa: A001
uint8 = dtype("uint8", np.uint8, INTEGRAL, 1)
int8 = dtype("int8", np.int8, INTEGRAL, 1)
int16 = dtype("int16", np.int16, INTEGRAL, 2)
int32 = dtype("int32", np.int32, INTEGRAL, 3)
int64 = dtype("int64", np.int64, INTEGRAL, 4)
float16 = dtype("float16", jnp.float16, FLOATING, 5)
bfloat16 = dtype("bfloat16", jnp.bfloat16, FLOATING, 5)
float32 = dtype("float32", np.float32, FLOATING, 6)
float64 = dtype("float64", np.float64, FLOATING, 7)

# PyTorch's aliases
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

ALL = (bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_FROM_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(float=float32, double=float64, half=float16, long=int64, int=int32, short=int16)

_default_float = [float32]


def get_default_dtype():
    return _default_float[0]


def set_default_dtype(d):
    d = as_dtype(d)
    if d.category != FLOATING:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float[0] = d


def from_np(np_dtype) -> dtype:
    """The tracegrad dtype of a numpy/jax dtype."""
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _FROM_NP:
            return _FROM_NP[d]
        raise TypeError(f"tracegrad has no dtype for numpy dtype {np_dtype}") from None


def as_dtype(d) -> dtype:
    """Accept a tracegrad dtype, a name ('float32'), a numpy dtype or a Python type."""
    if isinstance(d, dtype):
        return d
    if isinstance(d, str):
        try:
            return _BY_NAME[d.replace("torch.", "").replace("tracegrad.", "")]
        except KeyError:
            raise TypeError(f"unknown dtype {d!r}") from None
    import builtins
    if d is builtins.float:
        return get_default_dtype()
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool
    return from_np(np.dtype(d))


@functools.lru_cache(maxsize=None)
def promote_types(a: dtype, b: dtype) -> dtype:
    """PyTorch's ``promote_types``: the smallest dtype both ``a`` and ``b`` convert to safely."""
    if a is b:
        return a
    if a.category != b.category:
        hi, lo = (a, b) if a.category > b.category else (b, a)
        return hi
    if a.category == FLOATING and a._rank == b._rank == 5:  # float16 with bfloat16
        return float32
    if a.category == INTEGRAL and {a.name, b.name} == {"uint8", "int8"}:
        return int16
    return a if a._rank > b._rank else b


def _scalar_dtype(x):
    import builtins
    if isinstance(x, builtins.bool):
        return bool
    if isinstance(x, builtins.int):
        return int64
    return get_default_dtype()


def _combine(higher, lower):
    # torch's combine_categories: a higher tier wins unless a lower tier has a higher category.
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.category == FLOATING:
        return higher
    if higher is bool or lower.category == FLOATING:
        return promote_types(higher, lower)
    return higher


@functools.lru_cache(maxsize=4096)
def _result_type_key(key):
    dim = zero = wrapped = None
    for kind, d in key:
        if kind == 0:
            dim = d if dim is None else promote_types(dim, d)
        elif kind == 1:
            zero = d if zero is None else promote_types(zero, d)
        else:
            wrapped = d if wrapped is None else promote_types(wrapped, d)
    return _combine(dim, _combine(zero, wrapped))


def result_type(*operands) -> dtype:
    """PyTorch's result_type over tensors and Python scalars (three tiers: tensors with
    dimensions, zero-dim tensors, Python numbers; a lower tier only wins with a higher category)."""
    key = []
    for x in operands:
        d = getattr(x, "dtype", None)
        if isinstance(d, dtype):
            key.append((0 if x.ndim else 1, d))
        elif x is not None:
            key.append((2, _scalar_dtype(x)))
    return _result_type_key(tuple(key))
