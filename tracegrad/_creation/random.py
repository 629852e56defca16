"""Random tensors: ``rand``, ``randn``, ``randint``, ``randperm``, ``normal``, ``bernoulli`` and
the random ``*_like`` functions, drawing PyTorch's numbers from a ``Generator`` (see ``kernels``)
on the host and moving each result to its device once."""
from __future__ import annotations

import builtins

import math

import numpy as np

from .. import _dtype as D
from .._tensor import Tensor
from .checks import (_CPP_NAME, _REQUIRES_GRAD_ERROR, _check_device, _check_dtype, _check_int,
                     _check_requires_grad, _check_shape, _finish, _no_out, _number, _parse_size,
                     _put, _size_kw, _tname)
from . import kernels as K
from .factories import _like
from .generator import _check_generator

__all__ = ["rand_like", "randn_like", "randint_like", "randn", "rand", "randint", "randperm",
           "normal", "bernoulli", "multinomial"]

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
        if dtype.category == D.INTEGRAL:
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
        value = K.random_from_to(gen, math.prod(shape), dtype, low, high).reshape(shape)
        return _finish(_put(value, dev), dev, requires_grad)
    dtype = dtype or D.get_default_dtype()
    if not dtype.is_floating_point:
        kernel = "normal_kernel_cpu" if kind == "normal" else "check_uniform_bounds"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_CPP_NAME[dtype.name]}'")
    n = math.prod(shape)
    if kind == "normal":  # low and high are the mean and std here
        value = K.normal(gen, n, dtype, 0.0 if low is None else low, 1.0 if high is None else high)
    else:
        value = K.uniform(gen, n, dtype)
    return _finish(_put(value.reshape(shape), dev), dev, requires_grad)


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
    if dtype.category == D.INTEGRAL and n > 0 and n - 1 > np.iinfo(dtype.np).max:
        raise RuntimeError(f"n is too large for result tensor type: '{dtype}'")
    value = K.randperm(gen, n).astype(dtype.np)
    return _finish(_put(value, dev), dev, requires_grad)


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
        return _random("normal", "normal", shape, gen, dtype, dev, requires_grad, low=m, high=s)
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
    mv = np.asarray(mean._data.value) if mt else np.float64(_number("normal", "mean", 1, mean))
    sv = np.asarray(std._data.value) if st else np.float64(_number("normal", "std", 2, std))
    if st:
        if bool(np.any(sv < 0)):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif sv < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    try:
        shape = np.broadcast_shapes(np.shape(mv), np.shape(sv))
    except ValueError:
        a, b = np.shape(mv), np.shape(sv)
        raise RuntimeError(f"The size of tensor a ({a[-1] if a else 1}) must match the size of "
                           f"tensor b ({b[-1] if b else 1}) at non-singleton dimension "
                           f"{max(len(a), len(b)) - 1}") from None
    n, f = math.prod(shape), dtype.np
    # as PyTorch: normal_(0, std) then add_(mean) for a number std, else
    # normal_(0, 1).mul_(std).add_(mean), each step rounded in the dtype
    if st:
        eps = K.normal(gen, n, dtype).reshape(shape)
        value = eps * sv.astype(f) + mv.astype(f)
    else:
        value = K.normal(gen, n, dtype, 0.0, _float(sv)).reshape(shape) + mv.astype(f)
    value = _put(np.ascontiguousarray(value, dtype=f), dev)
    out_t = Tensor._make(value, dev)
    grads = [x for x in (mean, std) if isinstance(x, Tensor) and x.requires_grad]
    for x in grads:
        # join the graph with a zero gradient, as PyTorch's normal backward is zero
        out_t = out_t + x * 0
    return out_t


def bernoulli(input, p=None, *, generator=None, out=None):  # noqa: A002
    """0/1 samples with the probabilities in ``input`` (or the number ``p`` for every
    element), in ``input``'s dtype and shape."""
    _no_out("bernoulli", out)
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli(): argument 'input' (position 1) must be Tensor, not "
                        f"{_tname(input)}")
    gen = _check_generator("bernoulli", generator)
    shape, dt = tuple(input.shape), input.dtype
    if p is not None:
        value = K.bernoulli_scalar(gen, math.prod(shape), _check_probability(p)).reshape(shape)
    else:
        probs = np.asarray(input.detach()._data.value)
        if not dt.is_floating_point:
            raise NotImplementedError(f"\"bernoulli_tensor_cpu_p_\" not implemented for "
                                      f"'{_CPP_NAME[dt.name]}'")
        if probs.size and not bool(np.all((probs >= 0) & (probs <= 1))):
            raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.  "
                               "(Could this error message be improved?  If so, please report "
                               "an enhancement request to PyTorch.)")
        value = K.bernoulli_tensor(gen, probs)
    return Tensor._make(_put(value.astype(dt.np), input.device), input.device)


def _check_probability(p):
    p = _float(_number("bernoulli_", "p", 1, p))
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return p


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):  # noqa: A002
    """``num_samples`` indices per row of ``input`` (1-D or 2-D non-negative weights), drawn
    as PyTorch draws them (int64)."""
    _no_out("multinomial", out)
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): argument 'input' (position 1) must be Tensor, not "
                        f"{_tname(input)}")
    n = _check_int("multinomial", "num_samples", 2, num_samples)
    gen = _check_generator("multinomial", generator)
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{_CPP_NAME[input.dtype.name]}")
    if n <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    cats = input.shape[-1]
    if not replacement and n > cats:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    probs = np.asarray(input.detach()._data.value)
    probs2 = probs.reshape(-1, cats)
    if not bool(np.all(probs2 >= 0)) or not bool(np.all(np.isfinite(probs2))):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if bool(np.any(probs2.sum(axis=-1) == 0)):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    value = K.multinomial(gen, probs2, n, replacement)
    if input.ndim == 1:
        value = value.reshape(n)
    return Tensor._make(_put(np.ascontiguousarray(value), input.device), input.device)
