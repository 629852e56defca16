"""``Tensor``: a jax array plus PyTorch's autograd facts (requires_grad, grad, grad_fn,
is_leaf, version counter, hooks, retain_grad), and PyTorch's storage/view model.

A tensor's value lives in ``t._data``: a ``_Storage`` (a mutable cell: the current jax array
and the version counter) for a tensor that owns its memory, or a ``_ViewData`` for one that
shares another's -- a view (``x[0]``, ``x.t()``, ``x.view(6)``, ...), ``detach()`` of a view,
``.data``. A ``_ViewData`` is (root storage, sizes, strides, storage offset) as PyTorch's
TensorImpl is: reading it gathers from the storage's current array (cached until the storage
is rebound), writing it scatters into the storage, and its version is its base's counter.
JAX arrays are immutable: an in-place op computes the new array and rebinds the cell.
Autograd views (``_ViewTensor``) also carry PyTorch's view autograd metadata: their base, how
they were created, and a ``grad_fn`` regenerated (``AsStridedBackward0``) when the base changed
in place. See docs/design.md, "Storage, views and versions".
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
    """A mutable cell: the current jax array of a tensor that owns its memory, and the
    version counter that it and all its views share."""

    __slots__ = ("value", "version", "__weakref__")

    def __init__(self, value):
        self.value = value
        self.version = 0


class _Counter:
    """A version counter of its own (``.data`` shares storage, not the counter)."""

    __slots__ = ("version",)

    def __init__(self):
        self.version = 0


# set by ops/shape.py (one layer up): read(array, size, stride, offset) -> the view's array;
# write(array, new, size, stride, offset) -> the storage's new array; regen(view, base, lay)
# -> the AsStridedBackward0 node of a view whose base changed in place
VIEW_FNS = None


class _ViewData:
    """The value of a tensor that shares ``storage``: sizes, strides and storage offset into
    the storage's (contiguous, flattened) array, as PyTorch's. ``vc`` is the version counter
    (the storage for a view; a ``_Counter`` of its own for ``.data``). ``base`` is the view's
    autograd base, ``creation`` PyTorch's CreationMeta (None, "no_grad" or "multi:<Name>")
    and ``attr_version`` the version its grad_fn was made at."""

    __slots__ = ("storage", "vc", "size", "stride", "offset", "base", "creation",
                 "attr_version", "_src", "_cache")

    def __init__(self, storage, vc, size, stride, offset, base, creation, src, cache):
        self.storage, self.vc = storage, vc
        self.size, self.stride, self.offset = size, stride, offset
        self.base, self.creation = base, creation
        self.attr_version = vc.version
        self._src, self._cache = src, cache

    @property
    def value(self):
        v = self.storage.value
        if v is self._src:
            return self._cache
        c = VIEW_FNS[0](v, self.size, self.stride, self.offset)
        self._src, self._cache = v, c
        return c

    @value.setter
    def value(self, new):  # a raw write through to the storage (no autograd)
        st = self.storage
        st.value = VIEW_FNS[1](st.value, new, self.size, self.stride, self.offset)
        self._src = None

    @property
    def version(self):
        return self.vc.version

    @version.setter
    def version(self, v):
        self.vc.version = v


def contiguous_strides(shape):
    """PyTorch's strides of a contiguous tensor of ``shape``."""
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(st))


def layout(t):
    """``(sizes, strides, storage offset)`` of ``t``, as PyTorch reports them."""
    d = t._data
    if d.__class__ is _ViewData:
        return d.size, d.stride, d.offset
    shape = d.value.shape
    return tuple(shape), contiguous_strides(shape), 0


def is_contiguous_layout(size, stride):
    expected = 1
    for s, st in zip(reversed(size), reversed(stride)):
        if s == 0:
            return True
        if s == 1:
            continue
        if st != expected:
            return False
        expected *= s
    return True


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
        return self.dtype.category == D.FLOATING

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
        if value and self.dtype.category != D.FLOATING:
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
        """A new tensor that shares this one's storage and version counter but is outside the
        graph: as in PyTorch, an in-place change of either is seen by both."""
        t = Tensor._make(None, self._device)
        t._data = self._data
        return t

    # ------------------------------------------------------------------ storage and strides
    def stride(self, dim=None):
        st = layout(self)[1]
        if dim is None:
            return st
        return st[_wrap_dim(dim, len(st))] if st else 1

    def storage_offset(self) -> int:
        d = self._data
        return d.offset if d.__class__ is _ViewData else 0

    def is_contiguous(self, memory_format=None):
        d = self._data
        return d.__class__ is not _ViewData or is_contiguous_layout(d.size, d.stride)

    def _is_view(self) -> bool:
        return False

    @property
    def _base(self):
        return None

    def detach_(self) -> "Tensor":
        """Make this tensor a leaf outside the graph, in place."""
        self.grad_fn = None
        self._rg = False
        self._output_nr = 0
        return self

    @property
    def data(self) -> "Tensor":
        """This tensor's storage outside the graph, with a version counter of its own (as in
        PyTorch: in-place changes through ``.data`` are hidden from autograd's checks)."""
        d = self._data
        st = d.storage if d.__class__ is _ViewData else d
        size, stride, offset = layout(self)
        t = Tensor._make(None, self._device)
        v = d.value
        t._data = _ViewData(st, _Counter(), size, stride, offset, None, None, st.value, v)
        return t

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        if STATE.tracer is not None:  # in a traced function: a graph break (the compiler's)
            STATE.tracer.not_compiled("assigning .data", "the assignment would happen once, at trace time")
        if self.__class__ is _ViewTensor:
            self.__class__ = Tensor
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
        if self.dtype.category != D.INTEGRAL or self.numel() != 1:
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

    # ------------------------------------------------------------------ in-place ops
    # (fill_, copy_, __setitem__, to() and every op method are installed by ops/__init__.py)
    def zero_(self):
        return self.fill_(0)


_GF = Tensor.__dict__["grad_fn"]   # the slots a view's properties below read and write
_RG = Tensor.__dict__["_rg"]

_NO_GRAD_VIEW_REBASED = (
    "A view was created in no_grad mode and its base or another view of its base has been "
    "modified inplace with grad mode enabled. Given that this use case is ambiguous and "
    "error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) "
    "or both outside (if you want the inplace to be tracked).")


class _ViewTensor(Tensor):
    """A differentiable view (PyTorch's DifferentiableViewMeta): ``grad_fn`` and
    ``requires_grad`` are regenerated, as an ``AsStridedBackward0`` of the base's current
    history, when the shared version counter moved since they were made (the base or another
    view changed in place). Only views pay for the check."""

    __slots__ = ()

    @property
    def grad_fn(self):
        d = self._data
        if d.attr_version != d.vc.version:
            _refresh(self, d)
        return _GF.__get__(self)

    @grad_fn.setter
    def grad_fn(self, node):
        _GF.__set__(self, node)

    @property
    def _rg(self):
        d = self._data
        if d.attr_version != d.vc.version:
            if d.creation == "no_grad":  # PyTorch raises from grad_fn, not requires_grad
                return _RG.__get__(self) or d.base._rg
            _refresh(self, d)
        return _RG.__get__(self)

    @_rg.setter
    def _rg(self, value):
        _RG.__set__(self, value)

    def _is_view(self) -> bool:
        return True

    @property
    def _base(self):
        return self._data.base


# a view prints as a Tensor, as PyTorch's do (type(x[0]).__name__ == "Tensor")
_ViewTensor.__name__ = _ViewTensor.__qualname__ = "Tensor"


def _refresh(view, d):
    d.attr_version = d.vc.version
    base = d.base
    if _GF.__get__(view) is None and not base._rg:
        return
    if d.creation == "no_grad":
        raise RuntimeError(_NO_GRAD_VIEW_REBASED)
    VIEW_FNS[2](view, base)



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
