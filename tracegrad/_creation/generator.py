"""The random number generators: ``Generator``, ``default_generator`` and the global seed
functions (``manual_seed``, ``seed``, ``initial_seed``, ``get_rng_state``, ``set_rng_state``).

Random numbers come from ``jax.random`` keys held by a ``Generator``: each random call splits
the generator's key, so ``manual_seed(s)`` replays the same sequence of random tensors. The
streams differ from PyTorch's (the values are not bit-identical to torch's for a seed)."""
from __future__ import annotations

import builtins
import os

import jax
import numpy as np

from .. import _dtype as D
from .._device import CPU
from .._tensor import Tensor
from .checks import _check_device, _put, _tname

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "_check_generator"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float


class Generator:
    """A random number generator: a ``jax.random`` key that every random call splits.

    ``Generator().manual_seed(s)`` (returns the generator), ``seed()``, ``initial_seed()``,
    ``get_state()`` / ``set_state(state)`` (the key as an 8-byte uint8 tensor). Pass it as
    ``generator=`` to the random functions. One generator serves every device: the sub-key of
    a call is moved to the device that the values are made on."""

    _DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed

    def __init__(self, device="cpu"):
        self.device = _check_device("Generator", device)
        self._seed = self._DEFAULT_SEED
        self._key = None  # made lazily: creating it starts jax's backend

    def __repr__(self):
        return f"<tracegrad.Generator seed={self._seed} device={self.device}>"

    @staticmethod
    def _key_of(seed):
        s = seed & 0xFFFF_FFFF_FFFF_FFFF
        data = np.array([s >> 32, s & 0xFFFF_FFFF], dtype=np.uint32)  # == jax.random.PRNGKey(s)
        return jax.device_put(data, CPU.jax_device())

    def manual_seed(self, seed):
        if isinstance(seed, _bool) or not isinstance(seed, (_int, np.integer)):
            raise RuntimeError(f"manual_seed expected a long, but got {_tname(seed)}")
        seed = _int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise ValueError("Overflow when unpacking long long")
        if seed < 0:
            seed = 0xFFFF_FFFF_FFFF_FFFF + seed
        self._seed = seed
        self._key = self._key_of(seed)
        return self

    def seed(self):
        """Seed from the OS's entropy; returns the seed."""
        s = _int.from_bytes(os.urandom(8), "little") & (2 ** 63 - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        if self._key is None:
            self._key = self._key_of(self._seed)
        data = np.asarray(self._key).astype(np.uint32).view(np.uint8).copy()
        return Tensor._make(_put(data, CPU), CPU)

    def set_state(self, new_state):
        if not isinstance(new_state, Tensor) or new_state.dtype is not D.uint8 or \
                new_state.numel() != 8:
            raise RuntimeError("set_state expects the uint8 Tensor of 8 bytes that get_state "
                               "returns")
        data = np.asarray(new_state.detach()._data.value).reshape(8).view(np.uint32)
        self._key = jax.device_put(data.copy(), CPU.jax_device())
        return self

    def _next_key(self, dev=CPU):
        """A fresh sub-key for one random call, on ``dev`` (the generator's key advances).

        Split eagerly even while jax traces a function (``ensure_compile_time_eval``), so the
        generator never holds a tracer."""
        with jax.ensure_compile_time_eval():
            if self._key is None:
                self._key = self._key_of(self._seed)
            self._key, sub = _split2(self._key)
        if dev.type != "cpu":
            sub = jax.device_put(sub, dev.jax_device())
        return sub


@jax.jit
def _split2(key):
    keys = jax.random.split(key)
    return keys[0], keys[1]


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (for every device); returns it. As PyTorch, ``int(seed)``
    first, so ``manual_seed(1.0)`` works; negative seeds map to ``0xffff_ffff_ffff_ffff + seed``."""
    seed = _int(seed)
    return default_generator.manual_seed(seed)


def seed():
    """Seed the default generator non-deterministically; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def _check_generator(fname, generator):
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{fname}(): argument 'generator' must be torch.Generator, not "
                        f"{_tname(generator)}")
    return generator

