"""Samplers with PyTorch's names, arguments, errors and draws: ``SequentialSampler``,
``RandomSampler``, ``SubsetRandomSampler``, ``WeightedRandomSampler``, ``BatchSampler``.

The random ones draw exactly what PyTorch's do, through the same generator calls
(``randperm(n, generator=g)``, ``randint(high=n, size=(32,), generator=g)``, a seed from
``empty((), dtype=int64).random_(generator=g)``), so they give PyTorch's order for the same
seed wherever tracegrad's generator gives PyTorch's numbers."""
from __future__ import annotations

import itertools

import numpy as np

from ... import _dtype as D
from ..._creation import Generator, empty, rand, randint, randperm
from ..._creation import tensor as _tensor
from ..._tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


def _random_seed(generator=None) -> int:
    """``int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())``: the
    seed PyTorch's RandomSampler and DataLoader draw from a generator."""
    t = empty((), dtype=D.int64)
    if hasattr(t, "random_"):
        return int(t.random_(generator=generator).item())
    # this tracegrad has no Tensor.random_ yet: a draw of the same range from the generator
    return int(randint(0, 2 ** 63 - 1, (), generator=generator).item())


class Sampler:
    """Base class: ``__iter__`` yields dataset indices (``__len__`` optional)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation per pass (``replacement=False``), or ``num_samples`` draws with
    replacement. Without a ``generator``, each pass seeds a fresh one from the default."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError("replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.generator is None:
            generator = Generator()
            generator.manual_seed(_random_seed())
        else:
            generator = self.generator
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from randint(high=n, size=(32,), dtype=D.int64,
                                   generator=generator).tolist()
            yield from randint(high=n, size=(self.num_samples % 32,), dtype=D.int64,
                               generator=generator).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from randperm(n, generator=generator).tolist()
            yield from randperm(n, generator=generator).tolist()[: self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order (one ``randperm`` per pass)."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


def _multinomial(weights: np.ndarray, num_samples, replacement, generator):
    """Indices drawn with probability proportional to ``weights`` (PyTorch's CPU algorithm's
    shape: inverse CDF of uniforms with replacement; without, the ``p / Exp(1)`` top-k)."""
    if replacement:
        u = rand(num_samples, dtype=D.float64, generator=generator).numpy()
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        # the first category whose cumulative probability reaches u (PyTorch's binary search)
        return np.minimum(np.searchsorted(cdf, u, side="left"), len(weights) - 1).tolist()
    if num_samples > int((weights > 0).sum()):
        raise RuntimeError("invalid multinomial distribution (with replacement=False, not "
                           "enough non-negative category to sample)")
    q = -np.log1p(-rand(len(weights), dtype=D.float64, generator=generator).numpy())
    with np.errstate(divide="ignore"):
        keys = weights / q
    return np.argsort(-keys, kind="stable")[:num_samples].tolist()


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = weights.detach().double() if isinstance(weights, Tensor) else \
            _tensor(weights, dtype=D.float64)
        if len(w.shape) != 1:
            raise ValueError("weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        w = self.weights.numpy()
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        yield from _multinomial(w, self.num_samples, self.replacement, self.generator)

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        it = iter(self.sampler)
        if self.drop_last:
            for batch in zip(*([it] * self.batch_size)):
                yield [*batch]
        else:
            batch = [*itertools.islice(it, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(it, self.batch_size)]

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
