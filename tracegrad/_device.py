"""Devices with PyTorch's names ('cpu', 'cuda', 'cuda:1') mapped onto jax devices."""
from __future__ import annotations

import functools

import jax

__all__ = ["device", "cuda"]


class device:
    """``tracegrad.device('cpu')``, ``device('cuda')``, ``device('cuda', 1)``, ``device('cuda:1')``."""

    __slots__ = ("type", "index", "_hash")

    def __init__(self, type, index=None):  # noqa: A002
        if isinstance(type, device):
            self.type, self.index, self._hash = type.type, type.index, type._hash
            return
        if not isinstance(type, str):
            raise TypeError(f"device() expected a string like 'cpu' or 'cuda:0', got {type!r}")
        if ":" in type:
            if index is not None:
                raise ValueError(f"type (string) must not include an index because index was passed explicitly: {type}")
            type, _, idx = type.partition(":")
            try:
                index = int(idx)
            except ValueError:
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'") from None
        if type == "gpu":
            type = "cuda"
        if type not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {type}")
        self.type, self.index = type, index
        # hashed on every compiled call's guard key: computed once
        self._hash = hash((type, index if type != "cpu" else None))

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and (
            self.index == other.index or self.type == "cpu")

    def __hash__(self):
        return self._hash

    def __repr__(self):
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def jax_device(self):
        """The jax device this names (raises PyTorch's error when no GPU is visible)."""
        return _jax_device(self.type, self.index or 0)


@functools.lru_cache(maxsize=None)
def _gpus():
    try:
        return tuple(jax.devices("gpu"))
    except RuntimeError:
        return ()


@functools.lru_cache(maxsize=None)
def _jax_device(type, index):  # noqa: A002
    if type == "cpu":
        return jax.devices("cpu")[0]
    gpus = _gpus()
    if not gpus:
        raise RuntimeError(
            "No CUDA GPUs are available: jax sees no GPU backend on this machine. Install a "
            "GPU build of jax (pip install 'jax[cuda12]') on a machine with an NVIDIA GPU, or "
            "keep the tensors on 'cpu'.")
    if index >= len(gpus):
        raise RuntimeError(f"CUDA error: invalid device ordinal (asked for cuda:{index}, "
                           f"{len(gpus)} GPU(s) visible)")
    return gpus[index]


CPU = device("cpu")


def as_device(d) -> device:
    """The device a tensor is placed on: 'cuda' means the current GPU, cuda:0 (as PyTorch
    reports ``tensor.device``)."""
    if d is None:
        return CPU
    if isinstance(d, int):
        return device("cuda", d)
    if not isinstance(d, device):
        d = device(d)
    if d.type == "cpu":
        return CPU
    return d if d.index is not None else device("cuda", 0)


def of_jax(arr) -> device:
    """The tracegrad device of a concrete jax array."""
    try:
        dev = next(iter(arr.devices()))
    except Exception:  # tracers and abstract values have no device
        return CPU
    if dev.platform == "cpu":
        return CPU
    return device("cuda", _gpus().index(dev) if dev in _gpus() else 0)


class cuda:  # namespace, like torch.cuda
    """``tracegrad.cuda.is_available()`` and ``device_count()``: true when jax sees a GPU."""

    @staticmethod
    def is_available():
        return bool(_gpus())

    @staticmethod
    def device_count():
        return len(_gpus())

    @staticmethod
    def synchronize(device=None):
        # jax dispatch is asynchronous; there is no global barrier, so wait on a tiny op.
        if _gpus():
            jax.device_put(0.0, _gpus()[0]).block_until_ready()

    @staticmethod
    def current_device():
        if not _gpus():
            _jax_device("cuda", 0)
        return 0
