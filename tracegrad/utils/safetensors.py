"""``tracegrad.utils.safetensors``: read and write ``.safetensors`` files (the names and
signatures of ``safetensors.torch``: ``save_file``, ``load_file``, ``save``, ``load``).

The format (https://github.com/huggingface/safetensors) is an 8-byte little-endian header
length, a JSON header ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin,
end]}, "__metadata__": {str: str}}`` padded with spaces to a multiple of 8, then the raw
little-endian bytes of every tensor. It is small enough to implement here in a page, so
tracegrad needs no extra dependency for it (the ``safetensors`` package's numpy API would add
one, and a round trip through numpy dicts).

    >>> import io, tracegrad as torch
    >>> from tracegrad.utils.safetensors import load, save
    >>> load(save({"w": torch.ones(2, dtype=torch.float16)}))
    {'w': tensor([1., 1.], dtype=tracegrad.float16)}
"""
from __future__ import annotations

import json
import os
import struct

import jax
import numpy as np

from .. import _dtype as D
from .._device import as_device
from .._tensor import Tensor

__all__ = ["save_file", "load_file", "save", "load"]

_CODES = {D.float64: "F64", D.float32: "F32", D.float16: "F16", D.bfloat16: "BF16",
          D.int64: "I64", D.int32: "I32", D.int16: "I16", D.int8: "I8", D.uint8: "U8",
          D.bool: "BOOL"}
_DTYPES = {code: dt for dt, code in _CODES.items()}


def save(tensors: dict, metadata: dict | None = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (a dict from names to tensors)."""
    if not isinstance(tensors, dict):
        raise TypeError(f"Expected a dict of [str, tracegrad.Tensor] but received "
                        f"{type(tensors)}")
    header, chunks, offset = {}, [], 0
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must be a dict of str to str")
        header["__metadata__"] = dict(metadata)
    # larger items first, then by name (as the safetensors package orders them: aligned data)
    order = sorted(tensors.items(), key=lambda kv: (-_itemsize(kv), kv[0]))
    for name, t in order:
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__}")
        if not isinstance(t, Tensor):
            raise ValueError(f"Key `{name}` is invalid, expected tracegrad.Tensor but received "
                             f"{type(t)}")
        raw = np.ascontiguousarray(t.detach().numpy(force=True)).astype(
            t.dtype.np.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _CODES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def _itemsize(kv):
    t = kv[1]
    return t.dtype.itemsize if isinstance(t, Tensor) else 0


def save_file(tensors: dict, filename, metadata: dict | None = None) -> None:
    """Write ``tensors`` (a dict from names to tensors) to ``filename``."""
    data = save(tensors, metadata)
    with open(filename, "wb") as f:
        f.write(data)


def load(data: bytes, device="cpu") -> dict:
    """The tensors of a safetensors file's bytes, as a dict (in the file's order)."""
    if len(data) < 8:
        raise ValueError("Error while deserializing header: HeaderTooSmall")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("Error while deserializing header: InvalidHeaderLength")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        raise ValueError("Error while deserializing header: InvalidHeaderDeserialization") \
            from None
    body = memoryview(data)[8 + n:]
    dev = as_device(device)
    out = {}
    entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda kv: kv[1]["data_offsets"][0])
    for name, info in entries:
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"tracegrad has no dtype for safetensors dtype {info['dtype']} "
                             f"(tensor {name!r})")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end > len(body) or end - begin != int(np.prod(shape)) * dt.itemsize:
            raise ValueError(f"Error while deserializing header: InvalidOffset({name!r})")
        arr = np.frombuffer(body[begin:end], dtype=dt.np.newbyteorder("<")).reshape(shape)
        arr = arr.astype(dt.np, copy=True)
        out[name] = Tensor._make(jax.device_put(arr, dev.jax_device()), dev)
    return out


def load_file(filename, device="cpu") -> dict:
    """The tensors stored in the safetensors file ``filename``, on ``device``."""
    with open(os.fspath(filename), "rb") as f:
        return load(f.read(), device)
