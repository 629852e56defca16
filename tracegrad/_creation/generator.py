"""The random number generators: ``Generator``, ``default_generator`` and the global seed
functions (``manual_seed``, ``seed``, ``initial_seed``, ``get_rng_state``, ``set_rng_state``).

A ``Generator`` is PyTorch's CPU generator, redone: a 32-bit Mersenne Twister (mt19937) seeded
as ``at::mt19937`` seeds it (the low 32 bits of the seed through the standard initialisation),
drawn 32 bits at a time (``random()``) or 64 at a time from two draws, the first one high
(``random64()``), plus the cached second sample of the Box-Muller normal. The stream itself is
numpy's ``MT19937`` bit generator (the same recurrence and tempering as ``std::mt19937``), whose
state is set from PyTorch's seeding, so a million draws cost one vectorised call.
``get_state()`` returns PyTorch's 5056-byte state layout, so a state saved by torch can be
loaded here and the other way round.
"""
from __future__ import annotations

import builtins
import os

import numpy as np

from .. import _dtype as D
from .._device import CPU
from .._tensor import Tensor
from .checks import _check_device, _put, _tname

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "_check_generator"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float

_N = 624  # mt19937's state size (words)
_STATE_BYTES = 5056  # sizeof(at::detail::CPUGeneratorImplState) on 64-bit platforms


def _mt_init(seed32):
    """std::mt19937's initial state for a 32-bit seed (``at::mt19937::init_with_uint32``)."""
    key = [0] * _N
    x = key[0] = seed32
    for j in range(1, _N):
        x = (1812433253 * (x ^ (x >> 30)) + j) & 0xFFFF_FFFF
        key[j] = x
    return np.array(key, dtype=np.uint32)


class Generator:
    """A random number generator with PyTorch's CPU stream: the same seed gives the same
    numbers as ``torch.Generator().manual_seed(seed)``.

    ``Generator().manual_seed(s)`` (returns the generator), ``seed()``, ``initial_seed()``,
    ``get_state()`` / ``set_state(state)`` (PyTorch's uint8 state tensor). Pass it as
    ``generator=`` to the random functions. A generator serves every device: the numbers are
    drawn on the host and the tensor is moved to the device it is made on.

        >>> import tracegrad as torch
        >>> g = torch.Generator().manual_seed(0)
        >>> torch.rand(3, generator=g)
        tensor([0.4963, 0.7682, 0.0885])
    """

    _DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed

    def __init__(self, device="cpu"):
        self.device = _check_device("Generator", device)
        self._bits = np.random.MT19937()
        self._set_seed(self._DEFAULT_SEED)

    def __repr__(self):
        return f"<tracegrad.Generator seed={self._seed} device={self.device}>"

    def _set_seed(self, seed):
        self._seed = seed
        self._bits.state = {"bit_generator": "MT19937",
                            "state": {"key": _mt_init(seed & 0xFFFF_FFFF), "pos": _N}}
        self._fresh = True  # seeded, nothing drawn yet (PyTorch's next_ is 0, not 624)
        self._normal = None  # the cached second Box-Muller sample (a double), if any

    def manual_seed(self, seed):
        if isinstance(seed, _bool) or not isinstance(seed, (_int, np.integer)):
            raise RuntimeError(f"manual_seed expected a long, but got {_tname(seed)}")
        seed = _int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise ValueError("Overflow when unpacking long long")
        if seed < 0:  # as a signed 64-bit integer read unsigned (PyTorch 2.13: -1 -> 2**64 - 1)
            seed += 2 ** 64
        self._set_seed(seed)
        return self

    def seed(self):
        """Seed from the OS's entropy; returns the seed."""
        s = _int.from_bytes(os.urandom(8), "little") & (2 ** 63 - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    # ---------------------------------------------------------------- draws
    def _random(self, n):
        """``n`` successive ``random()`` draws (uint32), as PyTorch's ``CPUGeneratorImpl``."""
        self._fresh = False
        return self._bits.random_raw(n).astype(np.uint32)

    def _random64(self, n):
        """``n`` successive ``random64()`` draws (uint64): two 32-bit draws, the first high."""
        r = self._bits.random_raw(2 * n)
        self._fresh = False
        return (r[0::2] << np.uint64(32)) | r[1::2]

    # ---------------------------------------------------------------- state
    def get_state(self):
        """PyTorch's ``CPUGeneratorImplState`` as a uint8 tensor of 5056 bytes."""
        st = self._bits.state["state"]
        pos = _int(st["pos"])
        if pos == _N:
            left, nxt = 1, 0 if self._fresh else _N
        else:
            left, nxt = _N + 1 - pos, pos
        buf = bytearray(_STATE_BYTES)
        view = memoryview(buf)
        np.frombuffer(view[0:8], np.uint64)[:] = self._seed
        np.frombuffer(view[8:16], np.int32)[:] = (left, 1)
        np.frombuffer(view[16:24], np.uint64)[:] = nxt
        np.frombuffer(view[24:24 + 8 * _N], np.uint64)[:] = st["key"].astype(np.uint64)
        if self._normal is not None:
            np.frombuffer(view[5024:5032], np.float64)[:] = self._normal
            np.frombuffer(view[5040:5044], np.int32)[:] = 1
        data = np.frombuffer(bytes(buf), np.uint8).copy()
        return Tensor._make(_put(data, CPU), CPU)

    def set_state(self, new_state):
        """Load a state from ``get_state()`` (this generator's or PyTorch's)."""
        if not isinstance(new_state, Tensor):
            raise TypeError(f"expected a torch.ByteTensor, but got {_tname(new_state)}")
        if new_state.dtype is not D.uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        if new_state.numel() != _STATE_BYTES:
            raise RuntimeError(f"Expected a CPUGeneratorImplState of size {_STATE_BYTES} but "
                               f"found the input RNG state size to be {new_state.numel()}")
        raw = np.asarray(new_state.detach()._data.value).reshape(-1).tobytes()
        seed_ = _int(np.frombuffer(raw[0:8], np.uint64)[0])
        left, seeded = (_int(v) for v in np.frombuffer(raw[8:16], np.int32))
        nxt = _int(np.frombuffer(raw[16:24], np.uint64)[0]) & 0xFFFF_FFFF
        key = np.frombuffer(raw[24:24 + 8 * _N], np.uint64).astype(np.uint32)
        # PyTorch's is_valid() (seeded, 0 < left <= 624, next <= 624); and, since numpy's
        # MT19937 keeps one position, left and next must be related as every state PyTorch
        # writes has them (left + next == 625, or a fresh left = 1, next = 0)
        if not seeded or not 0 < left <= _N or nxt > _N or (left != 1 and left + nxt != _N + 1):
            raise RuntimeError("Invalid mt19937 state")
        self._seed = seed_
        self._bits.state = {"bit_generator": "MT19937",
                            "state": {"key": key, "pos": _N if left == 1 else nxt}}
        self._fresh = left == 1 and nxt == 0
        valid = np.frombuffer(raw[5040:5044], np.int32)[0]
        self._normal = _float(np.frombuffer(raw[5024:5032], np.float64)[0]) if valid else None
        return self


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (for every device); returns it. As PyTorch, ``int(seed)``
    first, so ``manual_seed(1.0)`` works; a negative seed is read as unsigned (``seed + 2**64``).
    After ``manual_seed(s)`` the random functions draw PyTorch's numbers for ``s``."""
    seed = _int(seed)
    return default_generator.manual_seed(seed)


def seed():
    """Seed the default generator non-deterministically; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state():
    """The default generator's state: PyTorch's 5056-byte uint8 tensor."""
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
