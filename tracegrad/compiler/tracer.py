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

__all__ = ["Tracer", "NotCompiled", "InputProxy", "GraphBreak", "user_location", "data_dependent",
           "is_tracing", "proxy", "end_recording", "dtype_of"]


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


class FirstStep(GraphBreak):
    """``optimizer.step()`` traced while the optimizer creates its state (the first step:
    momentum buffers, Adam's moments): that call runs eagerly, and the next one is traced with
    the state in place (the state tensors are then inputs and outputs of the program)."""
    retry = True

    def __init__(self, loc):
        self.loc = loc
        RuntimeError.__init__(self, "optimizer.step() creates the optimizer's state on its first "
                              "step; that call runs eagerly and the next one is compiled")


class HostInput:
    """A program input that is not a tensor the function reached: a hyperparameter (or a number
    computed from them) read at each call, or the current ``.grad`` of a parameter. It looks to
    the call path like a captured tensor (``_data.value`` is read at each call)."""

    _rg = False
    requires_grad = False
    grad_fn = None
    _grad = None
    _output_nr = 0

    def __init__(self, device):
        self._device = device
        self._box = self

    @property
    def _data(self):
        return self._box


class HostScalar(HostInput):
    """``fn()`` (a Python number) as a 0-d array of ``dtype``, evaluated at each call."""

    shape = ()

    def __init__(self, fn, dtype, device):
        super().__init__(device)
        self.fn, self.dtype = fn, np.dtype(dtype)
        self.version = 0

    @property
    def value(self):
        return np.asarray(self.fn(), dtype=self.dtype)


class GradOf(HostInput):
    """The ``.grad`` that parameter ``t`` holds at each call (guarded to be there)."""

    def __init__(self, t, shape, dtype):
        super().__init__(t._device)
        self.t, self.shape, self.dtype = t, shape, dtype

    @property
    def _data(self):
        return self.t._grad._data


class GradSlot:
    """What a trace did to the ``.grad`` of a tensor from outside: ``before`` is its ``.grad``
    when the trace first touched it; ``observed``: the trace's result depends on whether
    ``before`` was there (guarded); ``reset``: set to None before anything read it; ``proxy``:
    the traced stand-in for ``before`` (a program input read at each call)."""

    __slots__ = ("t", "before", "observed", "reset", "proxy")

    def __init__(self, t):
        self.t, self.before, self.observed, self.reset, self.proxy = t, t._grad, False, False, None


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
        self.grad_slots = {}    # id(tensor) -> GradSlot: .grad of tensors from outside (whole step)
        self.host_guards = []   # (fn, expected, description): re-checked at each call
        self.host_effects = []  # fn(): host-side state updates run at each call (Adam's step)
        self.freed = False      # a backward inside freed the traced graph
        self.optimizers = {}    # id(optimizer) -> optimizer stepped inside
        self._guard_keys = set()
        self._arrays = {}       # id(array of a captured tensor) -> its Value
        self._host_scalars = {}  # (code, closure ids, dtype, device) -> (HostScalar, Value)

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
            # a saved tensor of a captured one, unpacked by a backward inside (a new Tensor on
            # the same array): the captured input itself, never a second, stale copy
            same = self._arrays.get(id(v))
            if same is not None:
                return same
            val = self.graph.input(v.shape, v.dtype, "captured", payload=t)
            c = self.captured[key] = (t, val)
            self._before[key] = (t._grad, t._data)
            self._arrays[id(v)] = val
        return c[1]

    def not_compiled(self, what, why=_NOT_COMPILED_WHY):
        """Called (through ``STATE.tracer``) where a traced function reaches ``what``: the
        eager engine's backward(), Optimizer.step(), zero_grad, the .grad/.data setters."""
        if self.parent is None:  # (deriving a backward runs the engine on purpose)
            raise NotCompiled(what, user_location(), why)

    # ---------------------------------------------------------------- the whole training step
    def host_scalar(self, fn, like, name=None):
        """A 0-d tensor of ``like``'s dtype whose value ``fn()`` is read at each call (a
        hyperparameter: changing it takes effect on the next call, without a retrace)."""
        dtype = np.dtype(like._data.value.dtype)
        # the same expression over the same objects (per parameter, the same group): one input
        key = (fn.__code__, tuple(id(c.cell_contents) for c in fn.__closure__ or ()), dtype,
               like._device)
        hit = self._host_scalars.get(key)
        if hit is not None and hit[0].value == np.asarray(fn(), dtype):
            return Tensor._make(hit[1], like._device)
        h = HostScalar(fn, dtype, like._device)
        v = self.graph.input((), h.dtype, "captured", payload=h, name=name)
        self.captured[id(h)] = (h, v)
        self._host_scalars[key] = (h, v)
        return Tensor._make(v, like._device)

    def host_guard(self, fn, desc):
        """Specialise on ``fn()`` (a branch the trace took): re-checked at each call."""
        value = fn()
        key = (fn.__code__, tuple(id(c.cell_contents) for c in fn.__closure__ or ()))
        if key not in self._guard_keys:
            self._guard_keys.add(key)
            self.host_guards.append((fn, value, desc))
        return value

    def host_effect(self, fn):
        """Run ``fn()`` at each call, before the program (a host-side count such as Adam's
        ``step``); the trace itself does not run it."""
        self.host_effects.append(fn)

    def _slot(self, t):
        s = self.grad_slots.get(id(t))
        if s is None:
            s = self.grad_slots[id(t)] = GradSlot(t)
        return s

    def _concrete_leaf(self, t, what):
        if isinstance(t._data.value, Value):
            raise NotCompiled(what, user_location(), "the gradient of a tensor argument of the "
                              "compiled function (or of a tensor made inside it) is not a program "
                              "output; capture the tensor (a parameter) instead")
        return self._slot(t)

    def observe_grad(self, t):
        """The trace reads ``t.grad`` (a tensor from outside): from now on it is the traced
        stand-in of the ``.grad`` that ``t`` holds at each call."""
        if self.parent is not None or isinstance(t._data.value, Value) or t.grad_fn is not None:
            return
        s = self._slot(t)
        if s.reset or s.observed:
            return
        s.observed = True
        b = s.before
        if b is not None:
            h = GradOf(t, b.shape, b._data.value.dtype)
            v = self.graph.input(b.shape, h.dtype, "captured", payload=h, name=None)
            self.captured[id(h)] = (h, v)
            s.proxy = Tensor._make(v, b._device)
            t._grad = s.proxy

    def accumulate_grad(self, t, g, in_place):
        """AccumulateGrad (or retain_grad) of a backward run inside the traced function."""
        if t.grad_fn is None:  # a leaf: its .grad is a program output
            self._concrete_leaf(t, "backward() reaching the .grad of a tensor argument")
            self.observe_grad(t)
        gv = self.value_of(g)
        if t._grad is None:
            t._grad = Tensor._make(gv, g._device)
            return
        cur = t._grad
        new = self._call(REGISTRY["add"], [self.value_of(cur), gv], {})
        if in_place and t.grad_fn is None:
            cur._data.value = new
            cur._data.version += 1
        else:
            t._grad = Tensor._make(new, g._device)

    def zero_grad(self, t, set_to_none):
        """``zero_grad`` of a tensor inside the traced function (Module's, Optimizer's)."""
        if isinstance(t._data.value, Value):
            if t._grad is not None:
                self._concrete_leaf(t, "zero_grad() of a tensor argument")
            return
        s = self._slot(t)
        if set_to_none:
            if not s.observed:
                s.reset = True
            t._grad = None
            return
        self.observe_grad(t)
        g = t._grad
        if g is not None:
            g.zero_()  # (a traced in-place op on the stand-in)

    def on_backward(self, create_graph, inputs):
        """``Tensor.backward()`` inside the traced function: derived into the same program
        (the engine then runs on the traced values)."""
        if self.parent is not None:
            return
        if create_graph:
            raise NotCompiled("backward(create_graph=True)", user_location(),
                              "the gradients would need a graph of their own outside the program")
        if inputs is not None:
            raise NotCompiled("backward(inputs=...)", user_location(),
                              "only backward() into the leaves' .grad is compiled")

    def backward_done(self, retain_graph):
        if not retain_graph:
            self.freed = True

    def optimizer_step(self, opt, closure):
        """``optimizer.step()`` inside the traced function: returns the state snapshot that
        ``optimizer_stepped`` compares with."""
        if self.parent is not None:
            return None
        if closure is not None:
            raise NotCompiled("optimizer.step(closure)", user_location(),
                              "a closure re-evaluates the loss, which the program does not do")
        if not getattr(type(opt), "_compiles", False):
            raise NotCompiled(f"{type(opt).__name__}.step()", user_location(),
                              "its update rule does not read its hyperparameters as program "
                              "inputs yet (they would be baked into the program)")
        self.optimizers[id(opt)] = opt
        return {id(p): (p, dict(s)) for p, s in opt.state.items()}

    def optimizer_stepped(self, opt, before):
        """After a traced ``optimizer.step()``: state created now (the first step) means this
        call runs eagerly (``FirstStep``); state tensors are inputs/outputs (writebacks), each
        guarded to be the same object at each call; Python values must not change."""
        if before is None:
            return
        loc = user_location()
        for p, s in list(opt.state.items()):
            old = before.get(id(p), (p, {}))[1]
            for k, v in s.items():
                if k not in old:
                    _restore_state(opt, before)
                    raise FirstStep(loc)
                if isinstance(v, Tensor):
                    if v is not old[k] or isinstance(v._data.value, Value) and id(v._data) not in self.mutated:
                        _restore_state(opt, before)
                        raise FirstStep(loc)
                    self.host_guards.append(
                        (lambda st=opt.state, p=p, k=k: st[p].get(k) if p in st else None, v,
                         f"optimizer state[{k!r}] of a parameter"))
                elif v is not old[k] and v != old[k]:
                    _restore_state(opt, before)
                    raise NotCompiled(f"optimizer.step() of {type(opt).__name__}", loc,
                                      f"it changes the Python value state[{k!r}] at trace time")

    def check_leaks(self, arg_proxies):
        """After the function ran: no traced value may stay in a ``.grad`` or ``.data`` of a
        tensor from outside (put back as it was, then a graph break)."""
        for key, (t, _) in self.captured.items():
            if isinstance(t, HostInput) or id(t) in self.grad_slots:
                continue  # (a .grad the program writes back: GradSlot)
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
        if self.parent is None:  # a backward inside the traced function: traced, as eager
            self.accumulate_grad(t, g, in_place=False)
            return
        self.hook(retain_grad_hook(t, self.out_index.get(id(t))), g, what="retain_grad")


def _restore_state(opt, before):
    """Put an optimizer's state back as it was before a traced step (the call runs eagerly)."""
    for p in list(opt.state):
        if id(p) not in before:
            del opt.state[p]
    for p, s in before.values():
        opt.state[p] = s


def undo_grads(tracer):
    """Put the ``.grad`` of tensors from outside back as they were before the trace."""
    for s in tracer.grad_slots.values():
        s.t._grad = s.before


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
