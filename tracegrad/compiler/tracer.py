"""Tracing: run the user's function on proxy tensors whose values are IR ``Value``s.

Proxies are ordinary ``Tensor``s, so the op registry's one ``apply`` records every op and
autograd attaches the same grad_fn nodes it would in eager mode: ``requires_grad``,
``is_leaf`` and ``grad_fn`` read exactly as eager while tracing. Concrete tensors met while
tracing (parameters, globals, closure cells) become *captured* inputs of the program, read
afresh at each call, never constants baked into it.
"""
from __future__ import annotations

import functools

import jax
import numpy as np

from .. import _dtype as D
from .._errors import GraphBreak, data_dependent, user_location  # noqa: F401 (re-exported)
from .._state import STATE
from .._tensor import Tensor
from ..autograd.graph import RemovableHandle
from ..ir.graph import Graph, Value
from ..ops._registry import REGISTRY
from .callbacks import hook_callback, retain_grad_hook


class NotCompiled(GraphBreak):
    """A call that the compiler does not compile into a program yet (``Tensor.backward()``,
    ``optimizer.step()``, assigning ``.grad``/``.data`` of a tensor from outside): a graph
    break, so that the function runs eagerly (fullgraph=False) and no traced value ever
    reaches a ``.grad``, a parameter or an optimizer's state."""

    def __init__(self, what, loc, why):
        self.what, self.loc = what, loc
        where = f" (at {loc[0]}:{loc[1]}: {loc[2]})" if loc else ""
        RuntimeError.__init__(
            self, f"tracegrad.compile: {what} inside a compiled function is not compiled into the "
            f"program{where}: {why}. Compile the forward only (return the loss) and call "
            f".backward() and optimizer.step() outside, or compile with fullgraph=False to run "
            f"such calls eagerly.")


_NOT_COMPILED_WHY = "it would run once, at trace time, and leave traced values in .grad"


@functools.lru_cache(maxsize=8192)
def _meta(op, arg_key, params_key):
    # Output shape/dtype of an op from input shapes/dtypes: jax.eval_shape of the op's own impl
    # (one source of truth; only paid at trace time, and cached).
    params = dict(params_key)
    structs = []
    pos = []
    for i, k in enumerate(arg_key):
        if k[0] == "v":
            structs.append(jax.ShapeDtypeStruct(k[1], k[2]))
            pos.append(i)
    lits = [k[1] if k[0] == "c" else None for k in arg_key]

    def f(*vals):
        args = list(lits)
        for i, v in zip(pos, vals):
            args[i] = v
        return op.impl(*args, **params)
    out = jax.eval_shape(f, *structs)
    return tuple(out.shape), np.dtype(out.dtype)


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


class Tracer:
    """Records ops into ``graph`` while installed as ``STATE.tracer``."""

    def __init__(self, graph: Graph, parent_values=None):
        self.graph = graph
        self.captured = {}      # id(storage) -> (tensor, Value)
        self.parent = parent_values  # for a backward graph: forward Value -> residual Value
        self.residuals = {}     # id(forward Value) -> (forward Value, backward input Value)
        self._prev = None
        self.locs = True
        self.loc = None         # backward tracer: the forward line whose rule is being applied
        self.fwd_arrays = {}    # backward tracer: id(array of a forward-captured tensor) -> Value
        self.out_index = {}     # backward tracer: id(output proxy) -> output number
        self.mutated = {}       # id(storage) -> (tensor, old value, version, grad_fn, rg, output_nr)
        self._before = {}       # id(storage) -> (.grad, storage) of a captured tensor when captured

    # ---------------------------------------------------------------- install
    def __enter__(self):
        self._prev = STATE.tracer
        STATE.tracer = self
        return self

    def __exit__(self, *exc):
        STATE.tracer = self._prev

    # ---------------------------------------------------------------- values
    def value_of(self, t, v=None):
        """The Value of this graph for a tensor (lifting concrete tensors and residuals)."""
        if v is None:
            v = t._data.value
        if isinstance(v, Value):
            if v.graph is self.graph:
                return v
            # a value of the forward graph used by the backward graph: a residual
            r = self.residuals.get(id(v))
            if r is None:
                r = (v, self.graph.input(v.shape, v.dtype, "residual", payload=v, name=v.name))
                self.residuals[id(v)] = r
            return r[1]
        fv = self.fwd_arrays.get(id(v))
        if fv is not None:
            return self.value_of(t, fv)
        key = id(t._data)
        c = self.captured.get(key)
        if c is None:
            val = self.graph.input(v.shape, v.dtype, "captured", payload=t)
            c = self.captured[key] = (t, val)
            self._before[key] = (t._grad, t._data)
        return c[1]

    def not_compiled(self, what, why=_NOT_COMPILED_WHY):
        """Called (through ``STATE.tracer``) where a traced function reaches ``what``: the
        eager engine's backward(), Optimizer.step(), zero_grad, the .grad/.data setters."""
        if self.parent is None:  # (deriving a backward runs the engine on purpose)
            raise NotCompiled(what, user_location(), why)

    def check_leaks(self, arg_proxies):
        """After the function ran: no traced value may stay in a ``.grad`` or ``.data`` of a
        tensor from outside (put back as it was, then a graph break)."""
        for key, (t, _) in self.captured.items():
            grad, storage = self._before[key]
            if t._data is not storage:
                t._data = storage
                raise NotCompiled("assigning .data of a tensor from outside", None,
                                  "the assignment would happen once, at trace time")
            if t._grad is not grad and t._grad is not None and isinstance(t._grad._data.value, Value):
                t._grad = grad
                raise NotCompiled("assigning .grad of a tensor from outside", None,
                                  "the assignment would happen once, at trace time")
        for i, p in enumerate(arg_proxies):
            if p._grad is not None:
                raise NotCompiled(f"assigning .grad of argument {i}", None,
                                  "the assignment would happen once, at trace time, to a proxy")

    def on_mutate(self, t):
        """An in-place op is about to rebind ``t``: keep what it was, so the trace can be undone
        on real (captured) tensors and the new value written back at each call."""
        st = t._data
        if id(st) not in self.mutated:
            if not isinstance(st.value, Value):
                self.value_of(t)  # lift it first: the program reads its value at each call
            self.mutated[id(st)] = (t, st.value, st.version, t.grad_fn, t._rg, t._output_nr)

    def cast(self, t, v, d):
        v = self.value_of(t, v) if not isinstance(v, Value) or v.graph is not self.graph else v
        return self._call(REGISTRY["convert"], [v], {"dtype": d})

    def record(self, op, args, vals, params):
        ins = []
        for a, v in zip(args, vals):
            if isinstance(a, Tensor):
                ins.append(self.value_of(a, v))
            else:
                ins.append(v)
        return self._call(op, ins, params)

    def _call(self, op, ins, params):
        key = tuple(("v", v.shape, v.dtype) if isinstance(v, Value) else ("c", v) for v in ins)
        try:
            shape, dtype = _meta(op, key, _hashable(tuple(params.items())))
        except TypeError:
            shape, dtype = _meta.__wrapped__(op, key, _hashable(tuple(params.items())))
        loc = self.loc if self.parent is not None else user_location()
        return self.graph.call(op, ins, params, shape, dtype, loc=loc)

    # ---------------------------------------------------------------- hooks in the backward
    def hook(self, fn, g, what="hook"):
        """A tensor hook met while deriving the backward: becomes a host callback node."""
        gv = self.value_of(g)
        out = self.graph.hook(gv, hook_callback(fn, gv, g._device), what=what, loc=self.loc)
        return Tensor._make(out, g._device)

    def retain(self, t, g):
        """retain_grad() met while deriving the backward: a host callback stores ``.grad`` on
        the call's output tensor (for an output) or on the proxy (for an intermediate)."""
        self.hook(retain_grad_hook(t, self.out_index.get(id(t))), g, what="retain_grad")


def is_tracing() -> bool:
    return STATE.tracer is not None


class InputProxy(Tensor):
    """The proxy of a compiled function's tensor argument while it is traced.

    A hook or ``retain_grad`` registered on an argument inside the function is meant for
    the caller's tensor, and eager registers it at every call: so the trace records it, and
    each call of the program registers it on that call's argument (see ``InputHook``)."""

    __slots__ = ()

    def register_hook(self, hook):
        record = self.__dict__.get("_record")
        if record is None:  # the trace is over: an ordinary tensor from now on
            return super().register_hook(hook)
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook expects a callable, got {type(hook).__name__}")
        record(self, hook)
        return RemovableHandle(None)

    def retain_grad(self):
        record = self.__dict__.get("_record")
        if record is None:
            return super().retain_grad()
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        record(self, None)


def proxy(value: Value, like, requires_grad, record=None):
    """A proxy tensor for an input Value, with the autograd facts of ``like``; ``record(proxy,
    hook or None)`` receives hooks and retain_grad registered on it while tracing."""
    t = Tensor._make(value, like.device if like is not None else None)
    t.__class__ = InputProxy
    if record is not None:
        t.__dict__["_record"] = record
    if like is not None and like.grad_fn is not None and requires_grad:
        t._rg = True
        t.grad_fn = like.grad_fn
        t._output_nr = like._output_nr
    else:
        t._rg = bool(requires_grad)
    return t


def end_recording(p):
    p.__dict__.pop("_record", None)


def dtype_of(v) -> D.dtype:
    return D.from_np(v.dtype)
