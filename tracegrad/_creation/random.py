"""Random tensors: ``rand``, ``randn``, ``randint``, ``randperm``, ``normal`` and the random
``*_like`` functions."""
from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dtype as D
from .._tensor import Tensor
from .checks import (_CPP_NAME, _REQUIRES_GRAD_ERROR, _check_device, _check_dtype, _check_int,
                     _check_requires_grad, _check_shape, _finish, _no_out, _number, _parse_size,
                     _size_kw, _tname)
from .factories import _like
from .generator import _check_generator

__all__ = ["rand_like", "randn_like", "randint_like", "randn", "rand", "randint", "randperm",
           "normal"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float


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
