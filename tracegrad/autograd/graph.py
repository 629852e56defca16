"""Autograd graph: ``Node`` (what ``tensor.grad_fn`` is), ``AccumulateGrad``, saved tensors
with version checks, and removable hook handles."""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict

__all__ = ["Node", "AccumulateGrad", "SavedTensor", "RemovableHandle"]

_seq = itertools.count()
_handle_ids = itertools.count()



class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook out again."""

    __slots__ = ("_dict_ref", "id")

    def __init__(self, hooks_dict):
        self._dict_ref = weakref.ref(hooks_dict) if hooks_dict is not None else None
        self.id = next(_handle_ids)

    def remove(self):
        d = self._dict_ref() if self._dict_ref is not None else None
        if d is not None:
            d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _HookDict(OrderedDict):
    """An OrderedDict that can be weakly referenced (handles hold a weak reference)."""


def add_hook(hooks: _HookDict, fn) -> RemovableHandle:
    h = RemovableHandle(hooks)
    hooks[h.id] = fn
    return h


class Node:
    """A backward function in the autograd graph (``tensor.grad_fn``).

    ``next_functions`` is a tuple of ``(Node or None, input_nr)``, one per forward input, as
    in PyTorch. ``name()`` gives the PyTorch-style name (``MulBackward0``).
    """

    __slots__ = ("next_functions", "_seq", "_pre_hooks", "_post_hooks", "_tensor_pre_hooks",
                 "_retains_grad", "_metadata", "__weakref__", "__dict__")
    num_outputs = 1  # how many forward outputs (= how many gradients this node takes)

    def __init__(self, next_functions=()):
        self.next_functions = next_functions
        self._seq = next(_seq)
        self._pre_hooks = None
        self._post_hooks = None
        self._tensor_pre_hooks = None  # {output_nr: _HookDict} of tensor.register_hook
        self._retains_grad = None      # {output_nr: weakref(tensor)}
        self._metadata = None

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"

    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    def apply(self, grad_outputs):
        """Gradients for each forward input (list aligned with next_functions)."""
        raise NotImplementedError

    def __call__(self, *grad_outputs):
        from .grad_mode import no_grad
        with no_grad():
            out = self.apply(list(grad_outputs))
        return tuple(out) if len(out) != 1 else out[0]

    def release(self):
        """Drop saved values after a backward that does not retain the graph."""

    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` runs after this node; may return new grad_inputs."""
        if self._post_hooks is None:
            self._post_hooks = _HookDict()
        return add_hook(self._post_hooks, fn)

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` runs before this node; may return new grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = _HookDict()
        return add_hook(self._pre_hooks, fn)

    def _tensor_hooks(self, output_nr) -> _HookDict:
        if self._tensor_pre_hooks is None:
            self._tensor_pre_hooks = {}
        d = self._tensor_pre_hooks.get(output_nr)
        if d is None:
            d = self._tensor_pre_hooks[output_nr] = _HookDict()
        return d


class AccumulateGrad(Node):
    """The node behind a leaf that requires grad: adds the incoming gradient into ``.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__(())
        self.variable = variable
        self._seq = float("inf")  # run as soon as ready, like PyTorch (sequence_nr = UINT64_MAX)

    def apply(self, grad_outputs):
        (_T or _tensor_module()).accumulate_grad(self.variable, grad_outputs[0])
        return []


_T = None  # the _tensor module (imported on first use: it imports this one)


def _tensor_module():
    global _T
    from .. import _tensor
    _T = _tensor
    return _T


class SavedTensor:
    """A tensor saved for backward: its value, and the version it had, checked when unpacked."""

    __slots__ = ("value", "data", "version", "leaf", "grad_fn", "output_nr", "requires_grad",
                 "device", "is_output")

    def __init__(self, t, is_output=False):
        self.value = t._data.value
        self.data = t._data
        self.version = t._data.version
        self.requires_grad = t._rg
        self.device = t._device
        self.is_output = is_output
        self.output_nr = t._output_nr
        if is_output:
            self.leaf = self.grad_fn = None  # the node itself; no reference cycle
        elif t.grad_fn is None:
            self.leaf, self.grad_fn = (t if t._rg else None), None
        else:
            self.leaf, self.grad_fn = None, t.grad_fn

    def check_version(self, node):
        if self.data.version != self.version:
            from .. import _tensor_str
            desc = _tensor_str.type_desc(self)
            of = ""
            if self.is_output:
                of = f", which is output {self.output_nr} of {node.name()},"
            elif self.grad_fn is not None:
                of = f", which is output {self.output_nr} of {self.grad_fn.name()},"
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{desc}]{of} is at version {self.data.version}; expected "
                f"version {self.version} instead. Hint: the tensor was changed in place after it "
                "was saved for backward; use an out-of-place op (x = x * 2 instead of x *= 2) or "
                ".clone() it before the in-place change.")

    def unpack(self, node, graph: bool):
        Tensor = (_T or _tensor_module()).Tensor
        if self.data.version != self.version:
            self.check_version(node)
        if graph:
            if self.leaf is not None:
                return self.leaf
            t = Tensor._make(self.value, self.device)
            if self.requires_grad:
                t.requires_grad = True
                t.grad_fn = node if self.is_output else self.grad_fn
                t._output_nr = self.output_nr
            return t
        return Tensor._make(self.value, self.device)
