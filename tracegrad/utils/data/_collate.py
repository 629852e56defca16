"""PyTorch's ``default_collate`` and ``default_convert``."""
from __future__ import annotations

import collections.abc
import re

import numpy as np

from ... import _dtype as D
from ..._creation import as_tensor
from ..._creation import tensor as _tensor
from ..._tensor import Tensor
from ...ops import stack
from .dataset import GatheredBatch

__all__ = ["default_collate", "default_convert"]

_np_str_obj_array_pattern = re.compile(r"[SaUO]")
_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def default_convert(data):
    """Numpy arrays (not of strings or objects) to tensors, inside mappings, named tuples,
    tuples and lists; everything else unchanged (the DataLoader's ``batch_size=None``)."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_"):
        if elem_type.__name__ == "ndarray" and _np_str_obj_array_pattern.search(data.dtype.str):
            return data
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            return elem_type({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Stack a list of samples into a batch, as PyTorch does: tensors are stacked along a new
    first dim; numpy arrays become tensors and are stacked; Python floats become a float64
    tensor, ints an int64 tensor (bools a bool tensor); strings stay a list; mappings,
    named tuples and sequences are collated field by field (a tuple of fields gives a list).

        >>> import tracegrad as torch
        >>> from tracegrad.utils.data import default_collate
        >>> default_collate([(torch.ones(2), 0), (torch.zeros(2), 1)])
        [tensor([[1., 1.],
                [0., 0.]]), tensor([0, 1])]
    """
    if isinstance(batch, GatheredBatch):  # TensorDataset's one-gather batch: already stacked
        return list(batch.gathered)
    elem = batch[0]
    elem_type = type(elem)
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_"):
        if elem_type.__name__ in ("ndarray", "memmap"):
            if _np_str_obj_array_pattern.search(elem.dtype.str) is not None:
                raise TypeError(_ERR.format(elem.dtype))
            if all(type(b) is type(elem) and b.shape == elem.shape and b.dtype == elem.dtype
                   for b in batch):
                # stacked on the host, then one transfer for the batch (not one per sample)
                return as_tensor(np.stack(batch))
            return default_collate([as_tensor(b) for b in batch])
        if elem.shape == ():  # numpy scalars
            return as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return _tensor(batch, dtype=D.bool)
    if isinstance(elem, float):
        return _tensor(batch, dtype=D.float64)
    if isinstance(elem, int):
        return _tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        try:
            return elem_type({key: default_collate([d[key] for d in batch]) for key in elem})
        except TypeError:
            return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [default_collate(samples) for samples in transposed]
        try:
            return elem_type([default_collate(samples) for samples in transposed])
        except TypeError:
            return [default_collate(samples) for samples in transposed]
    raise TypeError(_ERR.format(elem_type))
