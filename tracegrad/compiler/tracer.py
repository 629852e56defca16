"""Tracing: run the user's function on proxy tensors whose values are IR ``Value``s.

Proxies are ordinary ``Tensor``s, so the op registry's one ``apply`` records every op and
autograd attaches the same grad_fn nodes it would in eager mode: ``requires_grad``,
``is_leaf`` and ``grad_fn`` read exactly as eager while tracing. Concrete tensors met while
tracing (parameters, globals, closure cells) become *captured* inputs of the program, read
afresh at each call, never constants baked into it.
"""
from __future__ import annotations

import functools
import threading

import jax
import numpy as np

from .. import _dtype as D
from .._errors import GraphBreak, data_dependent, user_location  # noqa: F401 (re-exported)
from ..ir.graph import Graph, Value
from .._graph import accumulate_grad
from .._state import STATE
from .._tensor import Tensor
from ..ops._registry import REGISTRY


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
                r = (v, self.graph.input(v.shape, v.dtype, "residual", payload=v,
                                         name=f"r_{v.name}"))
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
        return c[1]

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
        from .runtime import make_hook_callback  # runtime imports this module
        gv = self.value_of(g)
        out = self.graph.hook(gv, make_hook_callback(fn, gv, g._device), what=what, loc=self.loc)
        return Tensor._make(out, g._device)

    def retain(self, t, g):
        """retain_grad() met while deriving the backward: a host callback stores ``.grad`` on
        the call's output tensor (for an output) or on the proxy (for an intermediate)."""
        from .runtime import _current  # runtime imports this module
        nr = self.out_index.get(id(t))

        def retain_grad(gt):
            target = _current.node.outputs[nr]() if nr is not None else t
            if target is not None:
                accumulate_grad(target, gt, create_graph=False, in_place=False)
            return None
        self.hook(retain_grad, g, what="retain_grad")


_local = threading.local()


def is_tracing() -> bool:
    return STATE.tracer is not None


def proxy(value: Value, like, requires_grad):
    """A proxy tensor for an input Value, with the autograd facts of ``like``."""
    t = Tensor._make(value, like.device if like is not None else None)
    if like is not None and like.grad_fn is not None and requires_grad:
        t._rg = True
        t.grad_fn = like.grad_fn
        t._output_nr = like._output_nr
    else:
        t._rg = bool(requires_grad)
    return t


def dtype_of(v) -> D.dtype:
    return D.from_np(v.dtype)
