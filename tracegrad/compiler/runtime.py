"""``tracegrad.compile``: guards and cache, the compiled call, and the
``CompiledFunctionBackward`` node that joins a compiled region to the eager graph.

A miss traces the function (tracer.py), derives the backward program from the forward IR
by running the engine on IR values (autodiff.py), prints both as Python (codegen.py) and
wraps the forward in ``jax.jit``; the backward is printed and jitted on the first backward.
A hit is one hashed key lookup, one jitted call, and wrapping the outputs.
"""
from __future__ import annotations

import functools
import threading
import time
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .._tensor import Tensor
from .._state import STATE
from ..autograd import grad_mode as _gm
from .._errors import FREED_GRAPH_MSG as _FREED_MSG
from ..autograd.graph import Node
from ..autograd import engine as _engine
from ..autograd import profiler as _profiler
from .._device import as_device
from .._graph import gradient_edge as _edge
from . import autodiff
from .._errors import GraphBreak
from ..ir.graph import NodeKind, Value

RECOMPILE_LIMIT = 8


def _region(name, **args):
    return _profiler.region(name, **args)


def _is_tensor(x):
    return isinstance(x, Tensor)


def _tensor_key(x):
    v = x._data.value
    return (v.shape, v.dtype, x._rg, x.grad_fn is None, x._device)


def _leaf_key(x):
    if isinstance(x, Tensor):
        v = x._data.value
        return (v.shape, v.dtype, x._rg, x.grad_fn is None, x._device)
    try:
        hash(x)
        return ("static", type(x), x)
    except TypeError:
        return ("static-id", type(x), id(x))


def _describe_key_part(k):
    if isinstance(k, tuple) and len(k) == 5 and not (k and k[0] in ("static", "static-id")):
        shape, dtype, rg, leaf, dev = k
        return f"tensor {dtype}{list(shape)} requires_grad={rg} leaf={leaf} on {dev}"
    return f"value {k[2]!r}" if k[0] == "static" else f"object id {k[2]}"


class Entry:
    """One compiled specialisation of a function."""

    def __init__(self):
        self.fwd = None              # jitted forward
        self.fwd_source = None
        self.fwd_graph = None
        self.bwd_graph = None
        self._bwd = None             # jitted backward (lazy)
        self.bwd_source = None
        self.out_spec = None         # per output leaf: ("prog", k) | ("arg", i) | ("cap", t) | ("static", v)
        self.out_tree = None
        self.diff_outputs = []       # output leaf positions that require grad, in backward order
        self.residual_spec = []      # ("in", i) | ("out", k)
        self.targets = []            # ("arg", i) | ("cap", j): inputs that get gradients
        self.captured = []           # [(tensor, shape, dtype, requires_grad)]
        self.n_prog_out = 0
        self.eager = False           # graph break with fullgraph=False: run eagerly
        self.plain = False           # one program output and nothing to replay (fast path)
        self.bare = False            # the jitted forward returns its one output untupled
        self.writebacks = []         # [(("arg"|"cap", i), program output)] in-place changes
        self.input_hooks = []        # [(arg index, "hook"|"retain", fn)] replayed per call
        self.grad_mode_after = None  # set_grad_enabled(...) called inside: replayed per call
        self.cap_sources = []        # [(captured index, getter(flat), description)]
        self.fn_name = "fn"
        self.ops = []
        self.fwd_py = None           # the printed forward as a Python function (not jitted)
        self._bwd_py = None
        self.joint_ok = False        # one scalar differentiable output, no hooks in the backward
        self.joint_on = False        # calls run the joint program (see _joint_use/_joint_miss)
        self.joint_score = 0
        self._joint = None
        self.joint_source = None
        self.joint_compiled = False

    def backward_fn(self):
        if self._bwd is None:
            t0 = time.perf_counter()
            with _region("tg.compile.codegen", program="backward"):
                self.bwd_source, self._bwd_py = autodiff.emit(self.bwd_graph, "backward", self.fn_name,
                                                              self.bwd_args, self.bwd_outs)
            self._bwd = jax.jit(self._bwd_py)
            self.codegen_s = time.perf_counter() - t0
        return self._bwd

    def joint_fn(self):
        """jax.jit of forward-then-backward with the implicit seed (built on first use)."""
        if self._joint is None:
            self.backward_fn()
            with _region("tg.compile.codegen", program="joint"):
                self.joint_source, fn = autodiff.emit_joint(self, self.fwd_py, self._bwd_py)
            self._joint = jax.jit(fn)
        return self._joint

    # The joint program is speculation that the output will be differentiated with the
    # implicit gradient (``loss.backward()``). It is switched on by such a backward, and off
    # again when joint results go unused (the output dropped without a backward, or a
    # backward with another gradient, which then recomputes the forward's residuals).
    def _joint_seen(self):
        if self.joint_ok:
            self.joint_score = min(self.joint_score + 1, 4)
            self.joint_on = True

    def _joint_miss(self):
        self.joint_score -= 2
        if self.joint_score <= 0:
            self.joint_on = False


class CompiledFunction:
    """What ``tracegrad.compile(fn)`` returns: call it like ``fn``.

    ``.source("forward"|"backward")``, ``.ir()``, ``.lowered_text()`` show the generated
    programs; ``.stats`` counts traces, hits and misses (with reasons) and times."""

    def __init__(self, fn, fullgraph=False, dynamic=None, differentiate=False):
        self.fn = fn
        # differentiate=True (tracegrad.func): every call's output is differentiated with the
        # implicit gradient, so the joint program is used from the first call
        self.differentiate = differentiate
        self.fullgraph = fullgraph
        self.dynamic = dynamic
        self._cache = {}
        self._last = None
        self._last_args = None
        self._keys = []
        self._warned_break = False
        self._warned_recompile = False
        self._hits = 0
        self._stats = {"traces": 0, "misses": 0, "miss_reasons": [], "trace_s": 0.0,
                       "codegen_s": 0.0, "compile_s": 0.0, "graph_breaks": 0, "joint_calls": 0}
        functools.update_wrapper(self, fn, updated=())

    @property
    def stats(self):
        """Calls, traces, cache hits and misses (with the reason of each), graph breaks, calls
        run by the joint program, and seconds spent tracing, generating code and compiling."""
        s = self._stats
        return {"calls": self._hits + s["misses"], "traces": s["traces"], "hits": self._hits,
                **{k: v for k, v in s.items() if k != "traces"}}

    # ------------------------------------------------------------------ call
    def __call__(self, *args, **kwargs):
        if STATE.tracer is not None:  # called while another function is traced: inline it
            return self.fn(*args, **kwargs)
        if not kwargs:
            try:  # the hot path: positional tensors only (anything else has no ._data)
                if len(args) == 1:  # _tensor_key inlined: ~0.15 us of a ~6 us call
                    a = args[0]
                    v = a._data.value
                    key = (STATE.grad_enabled, (v.shape, v.dtype, a._rg, a.grad_fn is None, a._device))
                else:
                    key = (STATE.grad_enabled, *map(_tensor_key, args))
            except AttributeError:
                pass
            else:
                entry = self._cache.get(key)
                if (entry is not None and entry.plain and STATE.profiler is None
                        and (len(args) < 2 or len(set(map(id, args))) == len(args))):
                    if not entry.captured:
                        self._hits += 1
                        self._last = entry
                        self._last_args = (args, None)
                        if not entry.diff_outputs:  # the hottest path: no autograd node
                            res = entry.fwd(*[t._data.value for t in args])
                            return Tensor._make(res if entry.bare else res[0],
                                                args[0]._device if args else None)
                        return self._run_plain(entry, args)
                    if self._check_captured(entry, args) is None:
                        self._hits += 1
                        return self._run_plain(entry, args)
        key, flat, tree, desc = self._key(args, kwargs)
        entry = self._cache.get(key)
        reason = None
        tensors = flat if tree is None and desc[3] is None else _unique_tensors(flat)
        if entry is not None:
            reason = self._check_captured(entry, flat) if entry.captured else None
            if reason is None:
                self._hits += 1
                if entry.eager:
                    self._last = entry
                    return self.fn(*args, **kwargs)
                with _region(f"tg.compile[{self.__name__}]", cache="hit"):
                    return self._run(entry, tensors, flat, tree, args, kwargs)
        if reason is None:
            reason = self._miss_reason(desc)
        self._stats["misses"] += 1
        self._stats["miss_reasons"].append(reason)
        self._warn_recompiles(reason)
        with _region(f"tg.compile[{self.__name__}]", cache="miss"):
            entry = self._build(flat, tree, args, kwargs)
            self._cache[key] = entry
            self._keys.append(desc)
            if entry.eager:
                return self.fn(*args, **kwargs)
            return self._run(entry, tensors, flat, tree, args, kwargs)

    def _key(self, args, kwargs):
        """The guard key of a call, its flattened arguments and tree, and the key's parts
        (tree, grad mode, per-leaf parts, aliasing) for the miss reason."""
        mode = STATE.grad_enabled
        if not kwargs:
            try:
                parts = tuple(map(_tensor_key, args))
            except AttributeError:
                parts = None
            if parts is not None:
                if len(args) < 2 or len(set(map(id, args))) == len(args):
                    return (mode, *parts), args, None, (None, mode, parts, None)
                ids = [id(a) for a in args]  # the same tensor twice: another program
                alias = tuple(ids.index(i) for i in ids)
                return (mode, None, parts, alias), args, None, (None, mode, parts, alias)
        flat, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_is_tensor)
        parts = tuple(_leaf_key(a) for a in flat)
        ids = [id(a) for a in flat if isinstance(a, Tensor)]
        alias = tuple(ids.index(i) for i in ids) if len(set(ids)) != len(ids) else None
        return (mode, tree, parts, alias), flat, tree, (tree, mode, parts, alias)

    def _check_captured(self, entry, flat=None):
        for k, getter, desc in entry.cap_sources:
            if getter(flat) is not entry.captured[k][0]:
                return f"`{desc}` now refers to another tensor than the one captured when traced"
        for k, (t, shape, dtype, rg) in enumerate(entry.captured):
            v = t._data.value
            if v.shape != shape or v.dtype != dtype or t._rg != rg:
                return (f"captured tensor #{k} changed: was {dtype}{list(shape)} requires_grad={rg}, "
                        f"now {v.dtype}{list(v.shape)} requires_grad={t._rg}")
        return None

    def _miss_reason(self, desc):
        if not self._keys:
            return "first call"
        (tree0, mode0, parts0, _), (tree, mode, parts, _) = self._keys[-1], desc
        if tree0 is not tree and (tree0 is None or tree is None or tree0 != tree):
            return "argument structure changed (pytree of args/kwargs or non-tensor positions)"
        if mode0 != mode:
            return f"grad mode changed (is_grad_enabled={mode})"
        if len(parts0) != len(parts):
            return "number of arguments changed"
        for i, (a, b) in enumerate(zip(parts0, parts)):
            if a != b:
                return f"argument {i}: {_describe_key_part(a)} -> {_describe_key_part(b)}"
        return "aliasing between tensor arguments changed"

    def _warn_recompiles(self, reason):
        if self._stats["traces"] >= RECOMPILE_LIMIT and not self._warned_recompile:
            self._warned_recompile = True
            warnings.warn(f"tracegrad.compile: {self.__name__} has been recompiled "
                          f"{self._stats['traces']} times; the guard that keeps failing: {reason}. "
                          f"Pass values that change between calls as tensors, keep shapes fixed, "
                          f"or mark the function not to compile.", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ trace + compile
    def _build(self, flat, tree, args, kwargs):
        entry = Entry()
        entry.fn_name = getattr(self.fn, "__name__", "fn").replace("<", "").replace(">", "") or "fn"
        t0 = time.perf_counter()
        try:
            with _region("tg.compile.trace"):
                autodiff.trace(entry, self.fn, flat, tree, args, kwargs)
        except GraphBreak as e:
            self._stats["graph_breaks"] += 1
            if self.fullgraph:
                raise
            if not self._warned_break:
                self._warned_break = True
                warnings.warn(f"{e} Running {entry.fn_name} eagerly for these inputs "
                              f"(fullgraph=False).", UserWarning, stacklevel=3)
            entry.eager = True
            self._last = entry  # so source()/ir() say the call ran eagerly
            return entry
        finally:
            self._stats["trace_s"] += time.perf_counter() - t0
            self._stats["traces"] += 1
        t1 = time.perf_counter()
        with _region("tg.compile.codegen", program="forward"):
            entry.fwd_source, fwd = autodiff.emit(entry.fwd_graph, "forward", entry.fn_name,
                                                  entry.fwd_graph.inputs, entry.fwd_graph.outputs)
        self._stats["codegen_s"] += time.perf_counter() - t1
        entry.fwd_py = fwd
        # one output and no residuals: the jitted program returns the bare array (a
        # one-element tuple costs jax ~0.2 us of output handling per call)
        entry.bare = len(entry.fwd_graph.outputs) == 1
        entry.fwd = jax.jit((lambda *a: fwd(*a)[0]) if entry.bare else fwd)
        entry.compiled = False
        entry.joint_ok = (len(entry.diff_outputs) == 1 and entry.bwd_graph is not None
                          and entry.grad_meta[0][0] == ()
                          and not any(n.kind is NodeKind.HOOK for n in entry.bwd_graph.nodes))
        if self.differentiate and entry.joint_ok:
            entry.joint_on, entry.joint_score = True, 2
        entry.plain = (entry.out_tree is None and entry.out_spec == [("prog", 0)]
                       and not entry.writebacks and not entry.input_hooks
                       and entry.grad_mode_after is None)
        self._last = entry
        return entry

    def _run(self, entry, tensors, flat, tree, args, kwargs):
        grad_enabled = STATE.grad_enabled
        vals = [t._data.value for t in tensors]
        if entry.captured:
            vals += [c[0]._data.value for c in entry.captured]
        grads = None
        if entry.joint_on and grad_enabled:
            res, grads = self._run_joint(entry, vals)
        elif not entry.compiled:
            t0 = time.perf_counter()
            with _region("tg.compile.xla_compile", **_cost(entry, vals)):
                res = entry.fwd(*vals)
                jax.block_until_ready(res)
            self._stats["compile_s"] += time.perf_counter() - t0
            entry.compiled = True
        elif STATE.profiler is None:
            res = entry.fwd(*vals)
        else:
            with _region("tg.compile.forward"):
                res = entry.fwd(*vals)
        if entry.bare and grads is None:
            res = (res,)
        self._last = entry
        self._last_args = (flat, tree)
        device = tensors[0]._device if tensors else (
            entry.captured[0][0]._device if entry.captured else None)
        if entry.plain:  # one program output, nothing else to replay
            out = Tensor._make(res[0], device)
            if entry.diff_outputs and grad_enabled:
                self._attach(entry, out, tensors, res, vals, (args, kwargs), grads)
            return out
        outs = []
        for kind, x in entry.out_spec:
            if kind == "prog":
                outs.append(Tensor._make(res[x], device))
            elif kind == "arg":
                outs.append(tensors[x])
            elif kind in ("obj", "static"):
                outs.append(x)
            elif kind == "same":
                outs.append(outs[x])
            else:  # "alias" / "arg_alias": a detached view sharing storage
                t = Tensor._make(None, device)
                t._data = outs[x]._data if kind == "alias" else tensors[x]._data
                outs.append(t)
        if entry.writebacks:  # in-place changes the function made to inputs / captured tensors
            for (kind, i), j in entry.writebacks:
                t = tensors[i] if kind == "arg" else entry.captured[i][0]
                t._data.value = res[j]
                t._data.version += 1
        if entry.input_hooks:
            for i, kind, hook in entry.input_hooks:
                if kind == "hook":
                    tensors[i].register_hook(hook)
                else:
                    tensors[i].retain_grad()
        if entry.grad_mode_after is not None:
            STATE.grad_enabled = entry.grad_mode_after
        if entry.diff_outputs and grad_enabled:
            node = CompiledFunctionBackward(entry, tensors, res[entry.n_prog_out:], vals,
                                            (args, kwargs), self, grads)
            node.outputs = [weakref.ref(outs[i]) for i in entry.diff_outputs]
            for nr, i in enumerate(entry.diff_outputs):
                o = outs[i]
                o._rg = True
                o.grad_fn = node
                o._output_nr = nr
                if entry.retain_outputs and nr in entry.retain_outputs:
                    o._retains = True
        if entry.out_tree is None:
            return outs[0]
        return jax.tree_util.tree_unflatten(entry.out_tree, outs)

    def _run_plain(self, entry, args):
        """A cache hit of a plain entry (positional tensors in, one program output, nothing
        to replay): ``_run`` less everything that cannot apply."""
        vals = [t._data.value for t in args]
        if entry.captured:
            vals += [c[0]._data.value for c in entry.captured]
        self._last = entry
        self._last_args = (args, None)
        device = args[0]._device if args else (
            entry.captured[0][0]._device if entry.captured else None)
        if not entry.diff_outputs:
            res = entry.fwd(*vals)
            return Tensor._make(res if entry.bare else res[0], device)
        if entry.joint_on:
            res, grads = self._run_joint(entry, vals)
        else:
            res, grads = entry.fwd(*vals), None
            if entry.bare:
                res = (res,)
        out = Tensor._make(res[0], device)
        self._attach(entry, out, args, res, vals, (args, {}), grads)
        return out

    def _attach(self, entry, out, tensors, res, vals, call, grads):
        """Make the call's CompiledFunctionBackward the grad_fn of its one output."""
        node = CompiledFunctionBackward(entry, tensors, res[entry.n_prog_out:], vals, call,
                                        self, grads)
        node.outputs = [weakref.ref(out)]
        out._rg = True
        out.grad_fn = node
        if entry.retain_outputs:
            out._retains = True

    def _run_joint(self, entry, vals):
        consts = [t._data.value for t in entry.bwd_consts]
        self._stats["joint_calls"] += 1
        if not entry.joint_compiled:
            joint = entry.joint_fn()
            t0 = time.perf_counter()
            with _region("tg.compile.xla_compile", program="joint"):
                out = joint(*vals, *consts)
                jax.block_until_ready(out)
            self._stats["compile_s"] += time.perf_counter() - t0
            entry.joint_compiled = True
            return out
        if STATE.profiler is None:
            return entry._joint(*vals, *consts)
        with _region("tg.compile.forward+backward"):
            return entry._joint(*vals, *consts)

    # ------------------------------------------------------------------ introspection
    def _entry(self, which=None):
        if self._last is None:
            raise RuntimeError(f"{self.__name__} has not been called yet: call it once (or use "
                               f"tracegrad.compiler.explain(f, *args)) before asking for its program")
        if self._last.eager:
            raise RuntimeError(f"the last call of {self.__name__} ran eagerly after a graph break; "
                               f"there is no compiled program for it")
        return self._last

    def source(self, which="forward") -> str:
        """The generated Python of the last call's program: "forward" or "backward"."""
        e = self._entry()
        if which == "forward":
            return e.fwd_source
        if which in ("backward", "joint"):
            if e.bwd_graph is None:
                raise RuntimeError("this program has no backward: no input requires grad, or "
                                   "grad mode was off when it was traced")
            if which == "backward":
                e.backward_fn()
                return e.bwd_source
            if not e.joint_ok:
                raise RuntimeError("this program has no joint form: it needs exactly one "
                                   "differentiable output, a scalar, and no hooks in the backward")
            e.joint_fn()
            return e.joint_source
        raise ValueError(f"source() takes 'forward', 'backward' or 'joint', got {which!r}")

    def ir(self, which="forward") -> str:
        e = self._entry()
        g = e.fwd_graph if which == "forward" else e.bwd_graph
        if g is None:
            raise RuntimeError("this program has no backward")
        return str(g)

    def lowered_text(self, which="forward") -> str:
        """XLA's StableHLO text of the last call's forward (or backward) program."""
        e = self._entry()
        flat, tree = self._last_args
        tensors = _unique_tensors(flat)
        vals = [t._data.value for t in tensors] + [c[0]._data.value for c in e.captured]
        if which == "forward":
            return e.fwd.lower(*vals).as_text()
        bwd = e.backward_fn()
        structs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in e.bwd_args]
        return bwd.lower(*structs).as_text()


def _cost(entry, vals):
    if STATE.profiler is None:
        return {}
    try:
        ca = entry.fwd.lower(*vals).cost_analysis()
        if isinstance(ca, (list, tuple)):
            ca = ca[0] if ca else {}
        return {"flops": float(ca.get("flops", 0.0)), "bytes_accessed": float(ca.get("bytes accessed", 0.0))}
    except Exception:  # cost analysis is best-effort and backend-specific
        return {}


def _unique_tensors(flat):
    seen = set()
    out = []
    for a in flat:
        if isinstance(a, Tensor) and id(a) not in seen:  # subclasses (Parameter) too
            seen.add(id(a))
            out.append(a)
    return out


class CompiledFunctionBackward(Node):
    """grad_fn of a compiled call's outputs: runs the jitted backward, then the eager engine
    carries the input gradients on (hooks on inputs, AccumulateGrad on leaves)."""

    def __init__(self, entry, tensors, residual_outs, vals, call, cf, grads=None):
        targets, devices = [], []
        for kind, i in entry.targets:
            t = tensors[i] if kind == "arg" else entry.captured[i][0]
            targets.append(_edge(t))
            devices.append(t._device)  # each input's gradient lives on that input's device
        super().__init__(tuple(targets))
        self.devices = devices
        self.entry = entry
        self.num_outputs = len(entry.diff_outputs)
        if grads is None:
            self.residuals = [vals[i] if kind == "in" else residual_outs[i]
                              for kind, i in entry.residual_spec]
        else:  # the joint program ran: gradients for the implicit seed are ready; the
            self.residuals = vals  # inputs are kept to recompute residuals for any other seed
        self.grads = grads
        self._joint_counted = False
        self.call = call
        self.cf = cf
        self.versions = [(c[0], c[0]._data.version) for c in entry.captured] + \
                        [(t, t._data.version) for t in tensors]
        self._freed = False
        self.outputs = []

    def name(self):
        return "CompiledFunctionBackward"

    def apply(self, grad_outputs):
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        for t, ver in self.versions:
            if t._data.version != ver:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: an input of the compiled function {self.cf.__name__} is at "
                    f"version {t._data.version}; expected version {ver} instead.")
        if STATE.grad_enabled:  # create_graph: replay eagerly so the gradient has a graph
            self._joint_done(False)
            return self._replay(grad_outputs)
        e = self.entry
        g0 = grad_outputs[0]
        implicit = g0 is not None and len(grad_outputs) == 1 and e.joint_ok and \
            _engine.is_implicit_ones(g0)
        if self.grads is not None:
            if implicit:  # the joint program's gradients are the answer
                self._joint_done(True)
                it = iter(self.grads)
                return [Tensor._make(next(it), d) if present else None
                        for present, d in zip(e.grad_present, self.devices)]
            self._joint_done(False)  # another seed: recompute the residuals, run the backward
            vals = self.residuals
            res = () if e.bare else e.fwd(*vals)[e.n_prog_out:]
            self.residuals = [vals[i] if kind == "in" else res[i] for kind, i in e.residual_spec]
        elif implicit:
            e._joint_seen()
        gs = []
        for g, (shape, dtype) in zip(grad_outputs, e.grad_meta):
            gs.append(jnp.zeros(shape, dtype) if g is None else g._data.value)
        bwd = e._bwd or e.backward_fn()
        consts = [t._data.value for t in e.bwd_consts] if e.bwd_consts else ()
        _current.node = self
        try:
            if STATE.profiler is None:
                res = bwd(*self.residuals, *consts, *gs)
            else:
                with _region("tg.compile.backward"):
                    res = bwd(*self.residuals, *consts, *gs)
        finally:
            _current.node = None
        it = iter(res)
        return [Tensor._make(next(it), d) if present else None
                for present, d in zip(e.grad_present, self.devices)]

    def _replay(self, grad_outputs):
        """create_graph=True: run the user's function eagerly (recording), then the eager
        engine with create_graph, so second derivatives are exact."""
        args, kwargs = self.call
        with _gm.enable_grad():
            out = self.cf.fn(*args, **kwargs)
        flat, _ = jax.tree_util.tree_flatten(out, is_leaf=_is_tensor)
        outs = [flat[i] for i in self.entry.diff_outputs]
        pairs = [(o, g) for o, g in zip(outs, grad_outputs) if g is not None and o.requires_grad]
        targets = []
        tensors = _unique_tensors(jax.tree_util.tree_flatten((args, kwargs), is_leaf=_is_tensor)[0])
        for kind, i in self.entry.targets:
            targets.append(tensors[i] if kind == "arg" else self.entry.captured[i][0])
        if not pairs:
            return [None] * len(targets)
        res = _engine.run_backward([o for o, _ in pairs], [g for _, g in pairs], True, True,
                           inputs=targets, accumulate=False)
        return list(res)

    def _joint_done(self, used):
        """Account once for this call's joint gradients: used, or wasted (then dropped)."""
        if self.grads is None or self._joint_counted:
            if not used:
                self.grads = None
            return
        self._joint_counted = True
        if used:
            self.entry._joint_seen()
        else:
            self.entry._joint_miss()
            self.grads = None

    def release(self):
        # always: scalars baked into the program count as saved (eager OpNode, PyTorch), and
        # torch.compile's backward reads ctx.saved_tensors, which raises once freed
        self._joint_done(False)
        self._freed = True
        self.residuals = []
        self.call = None

    def __del__(self):
        try:
            self._joint_done(False)  # the output was dropped without a backward
        except Exception:  # interpreter shutdown: nothing left to account for
            pass


class _Current(threading.local):
    node = None  # the CompiledFunctionBackward whose program is running (for hook callbacks)


_current = _Current()


def make_hook_callback(fn, gv: Value, device=None):
    """A function for the generated backward: runs ``fn`` (a tensor hook) on the host
    through ``jax.experimental.io_callback`` and returns its replacement gradient. The hook
    sees a tensor on ``device``, the device of the gradient it hooks (as in eager)."""
    from jax.experimental import io_callback
    shape, dtype = gv.shape, gv.dtype
    device = as_device(device)

    def host(x):
        # a private copy (the hook may keep the tensor; x's buffer belongs to the callback)
        t = Tensor._make(jax.device_put(np.array(x), device.jax_device()), device)
        r = fn(t)
        if r is None:
            return np.asarray(x)
        r = np.asarray(r._data.value if isinstance(r, Tensor) else r, dtype=dtype)
        if r.shape != tuple(shape):
            raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has changed the size of "
                               f"value: expected {list(shape)}, got {list(r.shape)}")
        return r

    def callback(x):
        return io_callback(host, jax.ShapeDtypeStruct(shape, dtype), x, ordered=True)

    callback.__name__ = getattr(fn, "__name__", "hook")
    return callback


def compiled_function(fn, fullgraph=False, dynamic=None, differentiate=False):
    """A CompiledFunction for a function or an ``nn.Module`` (its ``__call__``)."""
    if autodiff.is_module(fn):
        cf = CompiledFunction(fn.__call__, fullgraph, dynamic, differentiate)
        cf.__name__ = type(fn).__name__
        return cf
    return CompiledFunction(fn, fullgraph, dynamic, differentiate)


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None,  # noqa: A001
            options=None, disable=False):
    """Compile ``model`` (a function or an ``nn.Module``) into traced, jitted forward and
    backward programs; also usable as ``@compile`` and ``@compile(fullgraph=True)``.

    Outputs keep eager autograd semantics (requires_grad, is_leaf, grad_fn, hooks), so
    compiled and eager code mix freely. See docs/compile.md."""
    if dynamic:
        warnings.warn("tracegrad.compile(dynamic=True): symbolic shapes are not supported; "
                      "each new input shape is traced and compiled again", UserWarning, stacklevel=2)
    if backend not in (None, "inductor", "xla", "jax"):
        raise ValueError(f"tracegrad.compile: unknown backend {backend!r} (tracegrad compiles "
                         f"with XLA through jax.jit)")

    def wrap(fn):
        return fn if disable else compiled_function(fn, fullgraph, dynamic)

    if model is None:
        return wrap
    return wrap(model)
