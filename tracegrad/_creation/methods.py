"""The random methods of Tensor: in place ``uniform_``, ``normal_``, ``random_``, ``bernoulli_``,
``exponential_``, and ``bernoulli``, ``multinomial``; drawing PyTorch's numbers (see ``kernels``)
and installed on ``Tensor`` from here, as the ops install theirs. An in-place method draws on
the host, moves the result to the tensor's device once and writes it with ``copy_`` (so the
version counter and the leaf checks are those of any in-place op)."""
from __future__ import annotations

import builtins

import numpy as np

from .._tensor import Tensor
from . import kernels as K
from .checks import _CPP_NAME, _number, _put
from .generator import _check_generator
from .random import _check_probability, bernoulli, multinomial

__all__ = ["uniform_", "normal_", "random_", "bernoulli_", "exponential_", "iteration_order"]

_float = builtins.float


def iteration_order(values, shape, strides):
    """``values`` drawn in PyTorch's TensorIterator order for a tensor of this shape and these
    strides (innermost the dimension of smallest stride: memory order for a permuted or sliced
    tensor), arranged in row-major order of ``shape``."""
    perm = sorted(range(len(shape)), key=lambda d: -strides[d])  # outermost first
    arr = np.asarray(values).reshape([shape[d] for d in perm])
    return arr.transpose(np.argsort(perm)).reshape(-1)


def _write(self, value):
    if not self.is_contiguous():  # PyTorch fills a strided tensor in memory order
        value = iteration_order(value, tuple(self.shape), self.stride())
    src = Tensor._make(_put(np.asarray(value, dtype=self.dtype.np).reshape(self.shape),
                            self.device), self.device)
    return self.copy_(src)


def _float_only(self, kernel):
    if not self.dtype.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for "
                                  f"'{_CPP_NAME[self.dtype.name]}'")


def uniform_(self, from_=0.0, to=1.0, *, generator=None):
    """Fill with samples from ``U(from_, to)`` (PyTorch's numbers for the generator's state)."""
    gen = _check_generator("uniform_", generator)
    _float_only(self, "check_uniform_bounds")
    lo = _float(_number("uniform_", "from", 1, from_))
    hi = _float(_number("uniform_", "to", 2, to))
    if lo > hi:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={from_} > to={to}")
    return _write(self, K.uniform(gen, self.numel(), self.dtype, lo, hi))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with samples from ``N(mean, std**2)``."""
    gen = _check_generator("normal_", generator)
    _float_only(self, "normal_kernel_cpu")
    m, s = _float(_number("normal_", "mean", 1, mean)), _float(_number("normal_", "std", 2, std))
    if s < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _write(self, K.normal(gen, self.numel(), self.dtype, m, s, self.is_contiguous()))


def random_(self, from_=None, to=None, *, generator=None):
    """``random_()``: integers in ``[0, 2**mantissa]`` (floats) or ``[0, max]``; ``random_(to)``:
    in ``[0, to)``; ``random_(from_, to)``: in ``[from_, to)``."""
    gen = _check_generator("random_", generator)
    n = self.numel()
    if from_ is None and to is None:
        return _write(self, K.random_bits(gen, n, self.dtype))
    if to is None:
        from_, to = 0, from_
    lo, hi = (int(_number("random_", name, i, v)) for i, (name, v) in
              enumerate((("from", from_), ("to", to)), 1))
    if hi <= lo:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={lo} >= "
                           f"to={hi}")
    return _write(self, K.random_from_to(gen, n, self.dtype, lo, hi))


def bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 0/1 samples: 1 with probability ``p`` (a number, or a tensor broadcast to
    ``self``)."""
    gen = _check_generator("bernoulli_", generator)
    if isinstance(p, Tensor):
        probs = np.broadcast_to(np.asarray(p.detach()._data.value), tuple(self.shape))
        return _write(self, K.bernoulli_tensor(gen, np.ascontiguousarray(probs)))
    return _write(self, K.bernoulli_scalar(gen, self.numel(), _check_probability(p)))


def exponential_(self, lambd=1.0, *, generator=None):
    """Fill with samples from the exponential distribution of rate ``lambd``."""
    gen = _check_generator("exponential_", generator)
    if not self.dtype.is_floating_point:
        raise RuntimeError("Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified "
                           f"{_CPP_NAME[self.dtype.name]}")
    lam = _number("exponential_", "lambd", 1, lambd)
    if not lam > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lam}")
    return _write(self, K.exponential(gen, self.numel(), self.dtype, _float(lam)))


for _f in (uniform_, normal_, random_, bernoulli_, exponential_, bernoulli, multinomial):
    setattr(Tensor, _f.__name__, _f)
del _f
