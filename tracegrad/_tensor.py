"""``Tensor``: a jax array plus PyTorch's autograd facts (requires_grad, grad, grad_fn,
is_leaf, version counter, hooks, retain_grad).

A tensor's value lives in a ``_Storage`` box (value + version counter). ``detach()`` and
``.data`` share the box, so an in-place change through either is seen by both, as in PyTorch.
JAX arrays are immutable: an in-place op computes the new array and rebinds the box.
"""
from __future__ import annotations

import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from . import _dtype as D
from ._device import CPU, device as _device_cls
from ._errors import data_dependent
from ._graph import AccumulateGrad, _HookDict, add_hook, set_tensor_constructor
from ._state import STATE
from ._tensor_str import tensor_repr

__all__ = ["Tensor", "Size"]


class _Storage:
    __slots__ = ("value", "version", "__weakref__")

    def __init__(self, value):
        self.value = value
        self.version = 0


class Size(tuple):
    """``tensor.shape``: a tuple that prints like PyTorch's ``torch.Size([2, 3])``."""

    def __repr__(self):
        return f"tracegrad.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


_NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.")


class Tensor:
    """A multi-dimensional array with PyTorch's autograd semantics, computed with JAX."""

    __slots__ = ("_data", "_rg", "grad_fn", "_output_nr", "_device", "_grad", "__dict__",
                 "__weakref__")
    # rarely set facts live in __dict__ with these class defaults
    _hooks = None          # _HookDict of hooks on a leaf
    _retains = False       # retain_grad() on a non-leaf
    _acc_ref = None        # weakref to this leaf's AccumulateGrad
    _is_param = False
    __array_priority__ = 1000  # numpy scalars defer to Tensor operators

    @staticmethod
    def _make(value, device=None) -> "Tensor":
        t = object.__new__(Tensor)
        t._data = _Storage(value)
        t._rg = False
        t.grad_fn = None
        t._output_nr = 0
        t._device = CPU if device is None else device
        t._grad = None
        return t

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with tracegrad.tensor(data), tracegrad.zeros(...), ...")

    # ------------------------------------------------------------------ basic facts
    @property
    def shape(self) -> Size:
        return Size(self._data.value.shape)

    def size(self, dim=None):
        s = self._data.value.shape
        if dim is None:
            return Size(s)
        return s[_wrap_dim(dim, len(s))]

    def dim(self) -> int:
        return len(self._data.value.shape)

    ndimension = dim

    @property
    def ndim(self) -> int:
        return len(self._data.value.shape)

    def numel(self) -> int:
        n = 1
        for s in self._data.value.shape:
            n *= s
        return n

    nelement = numel

    @property
    def dtype(self) -> D.dtype:
        return D.from_np(self._data.value.dtype)

    @property
    def device(self) -> _device_cls:
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self.dtype.category == 2

    def element_size(self) -> int:
        return self.dtype.itemsize

    def __len__(self):
        s = self._data.value.shape
        if not s:
            raise TypeError("len() of a 0-d tensor")
        return s[0]

    @property
    def _version(self) -> int:
        return self._data.version

    # ------------------------------------------------------------------ autograd facts
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"requires_grad must be a bool, got {type(value).__name__}")
        if self.grad_fn is not None and not value:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if value and self.dtype.category != 2:
            raise RuntimeError("only Tensors of floating point dtype can require gradients "
                               f"(this one is {self.dtype.name}; convert it with .float() first)")
        self._rg = value

    def requires_grad_(self, requires_grad=True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        if self.grad_fn is not None and not self._retains:
            warnings.warn(_NONLEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        if STATE.tracer is not None:  # read inside a compiled function: the call's .grad
            STATE.tracer.observe_grad(self)
        return self._grad

    @grad.setter
    def grad(self, value):
        if STATE.tracer is not None:  # in a traced function: a graph break (the compiler's)
            STATE.tracer.not_compiled("assigning .grad", "the assignment would happen once, at trace time")
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: expected "
                                   f"{list(self.shape)}, got {list(value.shape)}")
            if value.dtype is not self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: expected "
                                   f"{self.dtype}, got {value.dtype}")
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        return self._retains

    @property
    def output_nr(self) -> int:
        return self._output_nr

    def _accumulator(self) -> AccumulateGrad:
        acc = self._acc_ref() if self._acc_ref is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._acc_ref = weakref.ref(acc)
        return acc

    def register_hook(self, hook):
        """Register ``hook(grad) -> Tensor or None`` to run when this tensor's gradient is
        computed; a returned tensor replaces the gradient. Returns a handle with ``.remove()``."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook expects a callable, got {type(hook).__name__}")
        if self.grad_fn is not None:
            return add_hook(self.grad_fn._tensor_hooks(self._output_nr), hook)
        if self._hooks is None:
            self._hooks = _HookDict()
        return add_hook(self._hooks, hook)

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward (no-op on leaves)."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains:
            return
        node = self.grad_fn
        if node._retains_grad is None:
            node._retains_grad = {}
        node._retains_grad[self._output_nr] = weakref.ref(self)
        self._retains = True

    def detach(self) -> "Tensor":
        """A new tensor that shares this one's storage but is outside the graph.

        Unlike the note in the spec's cheat sheet, no memory is copied: as in PyTorch, an
        in-place change of either tensor is seen by both."""
        t = Tensor._make(None, self._device)
        t._data = self._data
        return t

    def detach_(self) -> "Tensor":
        """Make this tensor a leaf outside the graph, in place."""
        self.grad_fn = None
        self._rg = False
        self._output_nr = 0
        return self

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        if STATE.tracer is not None:  # in a traced function: a graph break (the compiler's)
            STATE.tracer.not_compiled("assigning .data", "the assignment would happen once, at trace time")
        self._data = _Storage(other._data.value)
        self._device = other._device

    # ------------------------------------------------------------------ conversion
    def _concrete(self, what):
        v = self._data.value
        if not isinstance(v, jax.Array) or isinstance(v, jax.core.Tracer):
            data_dependent(what)
        return v

    def item(self):
        v = self._concrete("Tensor.item()")
        if v.size != 1:
            raise RuntimeError(f"a Tensor with {v.size} elements cannot be converted to Scalar")
        return v.reshape(()).item() if v.dtype != jnp.bfloat16 else float(v.reshape(()))

    def tolist(self):
        return np.asarray(self._concrete("Tensor.tolist()")).tolist()

    def numpy(self, *, force=False) -> np.ndarray:
        if self._rg and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if self._device.type != "cpu" and not force:
            raise TypeError(f"can't convert {self._device} device type tensor to numpy. Use "
                            "Tensor.cpu() to copy the tensor to host memory first.")
        return np.asarray(self._concrete("Tensor.numpy()"))

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __bool__(self):
        v = self._concrete("a Python `if`/`bool()` on a tensor")
        if v.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(v.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.category != 1 or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __repr__(self, *, tensor_contents=None):
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self.ndim == 0 and spec:
            return self.item().__format__(spec)
        return object.__format__(self, spec) if spec else repr(self)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to(_device_cls("cuda", device if isinstance(device, int) else None)
                       if not isinstance(device, (str, _device_cls)) else device)

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def half(self):
        return self.to(D.float16)

    def bfloat16(self):
        return self.to(D.bfloat16)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def bool(self):
        return self.to(D.bool)

    def type(self, dtype=None):
        if dtype is None:
            return _tensor_type_name(self)
        return self.to(D.as_dtype(dtype))

    def type_as(self, other):
        return self.to(other.dtype)

    def contiguous(self, memory_format=None):
        return self

    def is_contiguous(self, memory_format=None):
        return True

    # ------------------------------------------------------------------ in-place ops
    # (fill_, copy_, __setitem__, to() and every op method are installed by ops/__init__.py)
    def zero_(self):
        return self.fill_(0)


def _wrap_dim(dim, ndim):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _tensor_type_name(t):
    names = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
             "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
             "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
             "bool": "BoolTensor"}
    prefix = "tracegrad.cuda." if t.device.type == "cuda" else "tracegrad."
    return prefix + names[t.dtype.name]


set_tensor_constructor(Tensor._make)
