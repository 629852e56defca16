"""``tensor()`` and friends: tensors from Python data, numpy and jax arrays, with PyTorch's dtype
inference, shape checks and overflow errors."""
from __future__ import annotations

import builtins
import collections.abc
import warnings

import jax
import numpy as np

from .. import _dtype as D
from .._device import CPU
from .._tensor import Tensor
from .checks import (_check_device, _check_dtype, _check_fits, _check_requires_grad, _finish,
                     _put, _put_copy, _scalar_type, _tname)

__all__ = ["tensor", "as_tensor", "asarray", "from_numpy"]

_bool, _int, _float = builtins.bool, builtins.int, builtins.float

_COPY_WARNING = (
    "To copy construct from a tensor, it is recommended to use sourceTensor.clone().detach() or "
    "sourceTensor.clone().detach().requires_grad_(True), rather than torch.tensor(sourceTensor).")

_SCALAR_TYPES = (_bool, _int, _float)


def _np_scalar_dtype(x):
    try:
        return D.from_np(x.dtype)
    except TypeError:
        raise TypeError(f"can't convert np.ndarray of type numpy.{x.dtype.name}. The only "
                        "supported types are: float64, float32, float16, bfloat16, int64, int32, "
                        "int16, int8, uint8, and bool.") from None


def _is_sequence(x):
    if isinstance(x, (list, tuple, range)):
        return True
    return (isinstance(x, collections.abc.Sequence)
            and not isinstance(x, (str, bytes, bytearray)))


class _Collector:
    """One pass over nested sequences: checks the shape, promotes the element dtypes and
    flattens the leaves into a list of Python numbers."""

    __slots__ = ("shape", "flat", "dtype")

    def __init__(self, shape):
        self.shape = shape
        self.flat = []
        self.dtype = None

    def _promote(self, d):
        self.dtype = d if self.dtype is None else D.promote_types(self.dtype, d)

    def visit(self, seq, dim):
        shape = self.shape
        if len(seq) != shape[dim]:
            raise ValueError(f"expected sequence of length {shape[dim]} at dim {dim} "
                             f"(got {len(seq)})")
        if dim == len(shape) - 1:
            kinds = {type(x) for x in seq}
            if kinds <= {_float, _int, _bool}:  # the common case: a row of Python numbers
                self.flat.extend(seq)
                for k in kinds:
                    self._promote(D.bool if k is _bool else D.int64 if k is _int
                                  else D.get_default_dtype())
                return
            for x in seq:
                self.leaf(x)
            return
        for x in seq:
            if isinstance(x, (np.ndarray, jax.Array)) and x.ndim:
                self.array(np.asarray(x), dim + 1)
            elif isinstance(x, Tensor) and x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            elif _is_sequence(x):
                self.visit(x, dim + 1)
            else:
                raise TypeError(f"expected a sequence at dim {dim + 1}, got {_tname(x)} "
                                f"(not a sequence)")

    def array(self, arr, dim):
        if arr.shape != self.shape[dim:]:
            for k, (want, got) in enumerate(zip(self.shape[dim:], arr.shape)):
                if want != got:
                    raise ValueError(f"expected sequence of length {want} at dim {dim + k} "
                                     f"(got {got})")
            raise ValueError(f"expected a sequence with {len(self.shape) - dim} dimensions at "
                             f"dim {dim} (got an array with {arr.ndim})")
        self._promote(_np_scalar_dtype(arr))
        self.flat.extend(arr.ravel().tolist())

    def leaf(self, x):
        if isinstance(x, (np.generic, np.ndarray, jax.Array)) and np.ndim(x) == 0:
            arr = np.asarray(x)  # numpy scalars keep their dtype (np.float64 is a float too)
            self._promote(_np_scalar_dtype(arr))
            self.flat.append(arr.item())
        elif isinstance(x, _SCALAR_TYPES):
            self._promote(_scalar_type(x))
            self.flat.append(x)
        elif isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            self._promote(x.dtype)
            self.flat.append(x.item())
        elif _is_sequence(x) or isinstance(x, (np.ndarray, jax.Array)):
            raise TypeError(f"'{_tname(x)}' object cannot be interpreted as a number "
                            f"(expected a scalar at dim {len(self.shape)})")
        elif isinstance(x, complex):
            raise TypeError("tracegrad has no complex dtypes: cannot make a tensor of complex")
        else:
            raise RuntimeError(f"Could not infer dtype of {_tname(x)}")


def _sequence_shape(data):
    """The shape read along the first elements (as PyTorch's compute_sizes)."""
    shape = []
    x = data
    while True:
        if isinstance(x, str):
            raise ValueError(f"too many dimensions '{_tname(x)}'")
        if isinstance(x, (np.ndarray, jax.Array)):
            shape.extend(x.shape)
            return shape
        if isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            return shape
        if not _is_sequence(x):
            return shape
        n = len(x)
        shape.append(n)
        if n == 0:
            return shape
        x = x[0]


def _from_sequence(data, dtype):
    """(numpy array, dtype) of nested sequences, with PyTorch's inference and checks."""
    shape = tuple(_sequence_shape(data))
    col = _Collector(shape)
    col.visit(data, 0)
    inferred = col.dtype if col.dtype is not None else D.get_default_dtype()
    return _build(col.flat, shape, inferred, dtype)


def _build(flat, shape, inferred, dtype):
    """A numpy array of ``dtype`` (default ``inferred``) from a flat list of Python numbers."""
    target = dtype if dtype is not None else inferred
    # build exactly (float64 / int64 / bool), then cast: int -> uint8 wraps, float -> int
    # truncates, double -> float rounds once, as PyTorch's element-wise conversion does
    if inferred.category == D.FLOATING or target.category == D.FLOATING:
        build = np.float64
    elif inferred.category == D.INTEGRAL:
        build = np.int64
    else:
        build = np.bool_
    try:
        arr = np.array(flat, dtype=build)
    except OverflowError:
        raise ValueError("Overflow when unpacking long long") from None
    _check_fits(arr, target, name=target.name)
    with np.errstate(all="ignore"):
        return arr.reshape(shape).astype(target.np, copy=False), target


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new leaf tensor holding a copy of ``data`` (Python scalars, nested lists/tuples,
    numpy or jax arrays, Tensors). The dtype is inferred as in PyTorch: floats -> the default
    float dtype, ints -> int64, bools -> bool; numpy/jax arrays keep their dtype."""
    dtype = _check_dtype("tensor", dtype)
    _check_requires_grad("tensor", requires_grad)
    if isinstance(data, Tensor):
        warnings.warn(_COPY_WARNING, UserWarning, stacklevel=2)
        dev = data.device if device is None else _check_device("tensor", device)
        value = data._data.value
        if dtype is not None and dtype.np != value.dtype:
            value = value.astype(dtype.np)
        if dev != data.device:
            value = jax.device_put(value, dev.jax_device())
        return _finish(value, dev, requires_grad)
    dev = _check_device("tensor", device)
    if isinstance(data, jax.Array):  # immutable: sharing the buffer is a copy in effect
        d = _np_scalar_dtype(data) if dtype is None else dtype
        value = data if data.dtype == d.np else data.astype(d.np)
        if not isinstance(data, jax.core.Tracer):
            value = jax.device_put(value, dev.jax_device())
        return _finish(value, dev, requires_grad)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
        d = _np_scalar_dtype(arr) if dtype is None else dtype
        return _finish(_put_copy(arr, dev, d.np), dev, requires_grad)
    if isinstance(data, _SCALAR_TYPES):
        arr, _ = _build([data], (), _scalar_type(data), dtype)
        return _finish(_put(arr, dev), dev, requires_grad)
    if isinstance(data, complex):
        raise TypeError("tracegrad has no complex dtypes: cannot make a tensor of complex")
    if isinstance(data, str):
        raise TypeError(f"new(): invalid data type '{_tname(data)}'")
    if _is_sequence(data):
        arr, d = _from_sequence(data, dtype)
        return _finish(_put(arr, dev), dev, requires_grad)
    if hasattr(data, "__array__"):
        return tensor(np.asarray(data), dtype=dtype, device=device, requires_grad=requires_grad)
    raise RuntimeError(f"Could not infer dtype of {_tname(data)}")


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor: a Tensor is returned as is when its dtype and device already match
    (else converted with ``.to``, keeping autograd history); other data is copied in as by
    ``tensor`` (jax arrays are immutable, so no memory is shared with numpy)."""
    dtype = _check_dtype("as_tensor", dtype)
    if isinstance(data, Tensor):
        dev = None if device is None else _check_device("as_tensor", device)
        if (dtype is None or dtype is data.dtype) and (dev is None or dev == data.device):
            return data
        return data.to(device=dev, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """``torch.asarray``: like ``as_tensor``; ``copy=True`` always returns a new tensor."""
    if isinstance(obj, Tensor) and not copy:
        t = as_tensor(obj, dtype=dtype, device=device)
    elif isinstance(obj, Tensor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = tensor(obj, dtype=dtype, device=device)
    else:
        t = tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(ndarray):
    """A CPU tensor with the numpy array's dtype and values (a copy: jax arrays are immutable)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {_tname(ndarray)})")
    _np_scalar_dtype(ndarray)  # TypeError for dtypes tracegrad lacks
    return Tensor._make(_put_copy(ndarray, CPU), CPU)

