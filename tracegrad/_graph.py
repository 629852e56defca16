"""Autograd graph: ``Node`` (what ``tensor.grad_fn`` is), ``AccumulateGrad``, saved tensors
with version checks, removable hook handles, and the two things done to a leaf's ``.grad``
(accumulate into it, zero it). Public as ``tracegrad.autograd.graph``.

This layer is below ``Tensor``: it reads tensors' fields but never imports ``_tensor``.
``_tensor.py`` registers its constructor here (``set_tensor_constructor``), which is how a
``SavedTensor`` unpacks to a new tensor and ``AccumulateGrad`` stores a fresh ``.grad``.
"""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict

from ._state import STATE
from ._tensor_str import type_desc

__all__ = ["Node", "AccumulateGrad", "SavedTensor", "RemovableHandle", "gradient_edge",
           "accumulate_grad", "zero_grad", "set_tensor_constructor"]

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
        prev, STATE.grad_enabled = STATE.grad_enabled, False  # the node runs as under no_grad
        try:
            out = self.apply(list(grad_outputs))
        finally:
            STATE.grad_enabled = prev
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
        accumulate_grad(self.variable, grad_outputs[0], create_graph=STATE.grad_enabled)
        return []


_make_tensor = None  # Tensor._make(value, device), registered by _tensor.py


def set_tensor_constructor(make):
    """Called once by ``_tensor.py``: how this layer makes a tensor from (value, device)."""
    global _make_tensor
    _make_tensor = make


_NO_EDGE = (None, 0)


def gradient_edge(t):
    """``(node, input_nr)`` where the gradient of tensor ``t`` goes: its ``grad_fn`` (and which
    output of it ``t`` is), its ``AccumulateGrad`` if it is a leaf that requires grad, or
    ``(None, 0)``. One entry of a node's ``next_functions``."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t._rg:
        return (t._accumulator(), 0)
    return _NO_EDGE


def accumulate_grad(t, g, *, create_graph, in_place=True):
    """Add gradient ``g`` into ``t.grad``, as PyTorch does. The first gradient is stored as a
    new tensor object (a gradient handed to a hook is never aliased by ``.grad``). Without
    ``create_graph`` the stored gradient has no history, and a later one is added in place
    into it (``in_place``: a leaf's AccumulateGrad) or into a new tensor (``retain_grad``,
    whose earlier ``.grad`` objects keep their values). With ``create_graph`` the sum is
    recorded, so it can be differentiated again."""
    if g is None:
        return
    if STATE.tracer is not None and not create_graph:  # a backward inside a compiled function
        STATE.tracer.accumulate_grad(t, g, in_place)
        return
    if create_graph:
        t._grad = g if t._grad is None else t._grad + g
    elif t._grad is None:
        t._grad = _make_tensor(g._data.value, g._device)
    elif in_place:
        t._grad._data.value = t._grad._data.value + g._data.value
        t._grad._data.version += 1
    else:
        t._grad = _make_tensor(t._grad._data.value + g._data.value, g._device)


def zero_grad(t, set_to_none=True):
    """``t.grad = None`` (default), or zero it in place (detached from any history first), as
    ``Module.zero_grad`` and ``Optimizer.zero_grad`` do for each parameter."""
    if STATE.tracer is not None:  # in a compiled function: the program's .grad (the compiler's)
        STATE.tracer.zero_grad(t, set_to_none)
        return
    if t._grad is None:
        return
    if set_to_none:
        t._grad = None
        return
    g = t._grad
    if g.grad_fn is not None:
        g.detach_()
    else:
        g.requires_grad_(False)
    g.zero_()


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
            desc = type_desc(self)
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
        make = _make_tensor
        if self.data.version != self.version:
            self.check_version(node)
        if graph:
            if self.leaf is not None:
                return self.leaf
            t = make(self.value, self.device)
            if self.requires_grad:
                t.requires_grad = True
                t.grad_fn = node if self.is_output else self.grad_fn
                t._output_nr = self.output_nr
            return t
        return make(self.value, self.device)
