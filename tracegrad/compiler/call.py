"""``tracegrad.compile``: the compiled function and its call path.

A call computes its guard key (guards.py) and looks it up. A miss traces the function to a
``Program`` (trace.py) and makes its cache ``Entry`` (entry.py: the forward printed by
codegen.py and wrapped in ``jax.jit``). A hit is one hashed key lookup, one jitted call, and
wrapping the outputs; a call whose output has history gets a ``CompiledFunctionBackward``
(backward.py) as grad_fn.

There are two paths through a call: ``_run_plain`` for an entry with one program output and
nothing to replay (the common case, reached from the inlined hot path in ``__call__``), and
``_run`` for everything else (pytrees, writebacks, replayed hooks, several outputs).
"""
from __future__ import annotations

import functools
import time
import warnings
import weakref

import jax

from .._state import STATE
from .._tensor import Tensor
from ..autograd import profiler as _profiler
from . import guards
from .backward import CompiledFunctionBackward, target_tensor
from .entry import Entry
from .guards import RECOMPILE_LIMIT, tensor_key, unique_tensors
from .program import GradKind, OutKind, Source
from .trace import function_name, trace
from .tracer import GraphBreak

__all__ = ["CompiledFunction", "compiled_function", "compile"]

_region = _profiler.region


class CompiledFunction:
    """What ``tracegrad.compile(fn)`` returns: call it like ``fn``.

    ``.source("forward"|"backward"|"joint")``, ``.ir()``, ``.lowered_text()`` show the
    generated programs; ``.stats`` counts traces, hits and misses (with reasons) and times."""

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
                       "codegen_s": 0.0, "compile_s": 0.0, "graph_breaks": 0, "joint_calls": 0,
                       "eager_first_steps": 0}
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
                if len(args) == 1:  # tensor_key inlined: ~0.15 us of a ~6 us call
                    a = args[0]
                    v = a._data.value
                    key = (STATE.grad_enabled, (v.shape, v.dtype, a._rg, a.grad_fn is None, a._device))
                else:
                    key = (STATE.grad_enabled, *map(tensor_key, args))
            except AttributeError:
                pass
            else:
                entry = self._cache.get(key)
                if (entry is not None and not entry.eager_only and entry.plain
                        and STATE.profiler is None
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
                    if guards.check_captured(entry.program, args) is None:
                        self._hits += 1
                        return self._run_plain(entry, args)
        key, flat, tree, desc = guards.call_key(args, kwargs)
        entry = self._cache.get(key)
        reason = None
        tensors = flat if tree is None and desc[3] is None else unique_tensors(flat)
        if entry is not None:
            reason = guards.check_captured(entry.program, flat) \
                if not entry.eager_only and entry.checks else None
            if reason is None:
                self._hits += 1
                if entry.eager_only:
                    self._last = entry
                    return self.fn(*args, **kwargs)
                with _region(f"tg.compile[{self.__name__}]", cache="hit"):
                    return self._run(entry, tensors, flat, tree, args, kwargs)
        if reason is None:
            reason = guards.miss_reason(self._keys[-1] if self._keys else None, desc)
        self._stats["misses"] += 1
        self._stats["miss_reasons"].append(reason)
        self._warn_recompiles(reason)
        with _region(f"tg.compile[{self.__name__}]", cache="miss"):
            entry = self._build(flat, tree)
            if entry is None:  # the optimizer's first step: eager this once, traced next call
                return self.fn(*args, **kwargs)
            self._cache[key] = entry
            self._keys.append(desc)
            if entry.eager_only:
                return self.fn(*args, **kwargs)
            return self._run(entry, tensors, flat, tree, args, kwargs)

    def _warn_recompiles(self, reason):
        if self._stats["traces"] >= RECOMPILE_LIMIT and not self._warned_recompile:
            self._warned_recompile = True
            warnings.warn(f"tracegrad.compile: {self.__name__} has been recompiled "
                          f"{self._stats['traces']} times; the guard that keeps failing: {reason}. "
                          f"Pass values that change between calls as tensors, keep shapes fixed, "
                          f"or mark the function not to compile.", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ trace + compile
    def _build(self, flat, tree):
        name = function_name(self.fn)
        t0 = time.perf_counter()
        try:
            with _region("tg.compile.trace"):
                program = trace(self.fn, flat, tree, name)
        except GraphBreak as e:
            if getattr(e, "retry", False):
                self._stats["eager_first_steps"] += 1
                return None
            self._stats["graph_breaks"] += 1
            if self.fullgraph:
                raise
            if not self._warned_break:
                self._warned_break = True
                warnings.warn(f"{e} Running {name} eagerly for these inputs "
                              f"(fullgraph=False).", UserWarning, stacklevel=3)
            entry = self._last = Entry.eager(name)  # so source()/ir() say the call ran eagerly
            return entry
        finally:
            self._stats["trace_s"] += time.perf_counter() - t0
            self._stats["traces"] += 1
        t1 = time.perf_counter()
        with _region("tg.compile.codegen", program="forward"):
            entry = Entry(program, self.differentiate)
        self._stats["codegen_s"] += time.perf_counter() - t1
        self._last = entry
        return entry

    def _run(self, entry, tensors, flat, tree, args, kwargs):
        for fn in entry.host_effects:  # host-side counters (Adam's step), before the inputs
            fn()                       # computed from them are read
        vals = [t._data.value for t in tensors]
        if entry.captured:
            vals += [c.tensor._data.value for c in entry.captured]
        grads = None
        if entry.joint_on:
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
            entry.captured[0].tensor._device if entry.captured else None)
        if entry.plain:  # one program output, nothing else to replay
            out = Tensor._make(res[0], device)
            if entry.diff_outputs:  # (grad mode may be on inside only)
                self._attach(entry, out, tensors, res, vals, (args, kwargs), grads)
            return out
        outs = []
        for kind, i, obj in entry.out_spec:
            if kind is OutKind.PROGRAM:
                outs.append(Tensor._make(res[i], device))
            elif kind is OutKind.ARG:
                outs.append(tensors[i])
            elif kind is OutKind.OUTSIDE or kind is OutKind.STATIC:
                outs.append(obj)
            elif kind is OutKind.SAME:
                outs.append(outs[i])
            else:  # ALIAS / ARG_ALIAS: a detached tensor sharing the storage
                t = Tensor._make(None, device)
                t._data = outs[i]._data if kind is OutKind.ALIAS else tensors[i]._data
                outs.append(t)
        for ref, j in entry.writebacks:  # in-place changes made to inputs / captured tensors
            t = target_tensor(entry, tensors, ref)
            t._data.value = res[j]
            t._data.version += 1
        for t, kind, j in entry.grad_writes:  # .grad from a backward inside, as eager leaves it
            if kind is GradKind.NONE:
                t._grad = None
            elif kind is GradKind.NEW:
                t._grad = Tensor._make(res[j], t._device)
            else:
                g = t._grad
                g._data.value = res[j]
                g._data.version += 1
        for i, hook in entry.input_hooks:
            if hook is not None:
                tensors[i].register_hook(hook)
            else:
                tensors[i].retain_grad()
        if entry.grad_mode_after is not None:
            STATE.grad_enabled = entry.grad_mode_after
        if entry.diff_outputs:  # (grad mode may be on inside only)
            node = CompiledFunctionBackward(entry, tensors, res[entry.n_prog_out:], vals,
                                            (args, kwargs), self, grads)
            node.outputs = [weakref.ref(outs[i]) for i in entry.diff_outputs]
            node._freed = entry.program.freed  # a backward inside freed the graph, as eager
            for nr, i in enumerate(entry.diff_outputs):
                o = outs[i]
                o._rg = True
                o.grad_fn = node
                o._output_nr = nr
                if nr in entry.retain_outputs:
                    o._retains = True
        if entry.out_tree is None:
            return outs[0]
        return jax.tree_util.tree_unflatten(entry.out_tree, outs)

    def _run_plain(self, entry, args):
        """A cache hit of a plain entry (positional tensors in, one program output, nothing
        to replay): ``_run`` less everything that cannot apply."""
        vals = [t._data.value for t in args]
        if entry.captured:
            vals += [c.tensor._data.value for c in entry.captured]
        self._last = entry
        self._last_args = (args, None)
        device = args[0]._device if args else (
            entry.captured[0].tensor._device if entry.captured else None)
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
            return entry.joint(*vals, *consts)
        with _region("tg.compile.forward+backward"):
            return entry.joint(*vals, *consts)

    # ------------------------------------------------------------------ introspection
    def _entry(self):
        if self._last is None:
            raise RuntimeError(f"{self.__name__} has not been called yet: call it once (or use "
                               f"tracegrad.compiler.explain(f, *args)) before asking for its program")
        if self._last.eager_only:
            raise RuntimeError(f"the last call of {self.__name__} ran eagerly after a graph break; "
                               f"there is no compiled program for it")
        return self._last

    def source(self, which="forward") -> str:
        """The generated Python of the last call's program: "forward", "backward" or "joint"."""
        e = self._entry()
        if which == "forward":
            return e.fwd_source
        if which in ("backward", "joint"):
            if e.program.backward is None:
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
        """The IR text of the last call's forward (or backward) graph."""
        p = self._entry().program
        if which == "forward":
            return str(p.forward)
        if p.backward is None:
            raise RuntimeError("this program has no backward")
        return str(p.backward.graph)

    def lowered_text(self, which="forward") -> str:
        """XLA's StableHLO text of the last call's forward (or backward) program."""
        e = self._entry()
        flat, tree = self._last_args
        vals = [t._data.value for t in unique_tensors(flat)] + \
               [c.tensor._data.value for c in e.captured]
        if which == "forward":
            return e.fwd.lower(*vals).as_text()
        bwd = e.backward_fn()
        structs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in e.program.backward.args]
        return bwd.lower(*structs).as_text()


def _cost(entry, vals):
    """XLA's cost analysis of the forward, for the profiler's compile event (when profiling)."""
    if STATE.profiler is None:
        return {}
    try:
        ca = entry.fwd.lower(*vals).cost_analysis()
        if isinstance(ca, (list, tuple)):
            ca = ca[0] if ca else {}
        return {"flops": float(ca.get("flops", 0.0)), "bytes_accessed": float(ca.get("bytes accessed", 0.0))}
    except Exception:  # cost analysis is best-effort and backend-specific
        return {}


def compiled_function(fn, fullgraph=False, dynamic=None, differentiate=False):
    """A CompiledFunction for a function or an ``nn.Module`` (its ``__call__``)."""
    if guards.is_module(fn):
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
