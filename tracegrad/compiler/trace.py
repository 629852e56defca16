"""Tracing a call: from the user's function and one call's arguments to a frozen ``Program``.

The function runs on proxies (tracer.py); what it returns and what it changed in place are
read off the trace; when an output has history, the backward is derived (autodiff.py); both
graphs go through CSE and DCE, and the forward returns the residuals the backward reads.
Real tensors the trace changed are put back as they were, whatever happens.
"""
from __future__ import annotations

import inspect

import jax

from .._state import STATE
from .. import _creation
from .._tensor import Tensor
from ..ir.graph import Graph, NodeKind, Value
from ..ir.passes import cse, dce
from . import autodiff, guards
from .program import (BackwardProgram, Captured, GradKind, GradWrite, InputHook, OutKind, Output,
                      Program, Ref, Residual, ResidualFrom, Source, Writeback)
from .tracer import (GradOf, GraphBreak, HostInput, HostScalar, NotCompiled, Tracer,
                     end_recording, proxy, undo_grads)

__all__ = ["trace", "function_name"]


def _is_tensor(x):
    return isinstance(x, Tensor)


def function_name(fn):
    return getattr(fn, "__name__", "fn").replace("<", "").replace(">", "") or "fn"


def trace(fn, flat, tree, name=None) -> Program:
    """Trace ``fn`` on the call's flattened arguments ``flat`` (``tree`` unflattens them to
    ``(args, kwargs)``; None: ``flat`` are the positional arguments)."""
    name = name or function_name(fn)
    fwd = Graph(f"{name}_forward")
    tensors, proxies, index_of, input_hooks = [], {}, {}, []

    def record_input_hook(p, hook):
        # hooks / retain_grad on an input inside the function: replayed on the caller's
        # tensor at every call (as eager registers them at every call)
        input_hooks.append(InputHook(index_of[id(p)], hook))

    arg_names = _argument_names(fn, flat, tree)
    for i, a in enumerate(flat):
        if isinstance(a, Tensor) and id(a) not in proxies:  # Parameters too
            v = fwd.input(a.shape, a._data.value.dtype, "arg", payload=len(tensors),
                          name=arg_names[i] or f"a{len(tensors)}")
            p = proxy(v, a, a.requires_grad, record_input_hook)
            index_of[id(p)] = len(tensors)
            proxies[id(a)] = p
            tensors.append(a)
    pflat = [proxies[id(a)] if isinstance(a, Tensor) else a for a in flat]
    pargs, pkwargs = (pflat, {}) if tree is None else jax.tree_util.tree_unflatten(tree, pflat)
    arg_proxies = [proxies[id(t)] for t in tensors]
    tracer = Tracer(fwd)
    grad_mode = STATE.grad_enabled
    after = None
    rng = _creation.default_generator.get_state()
    try:
        with tracer:
            out = fn(*pargs, **pkwargs)
        tracer.check_leaks(arg_proxies)
        after = STATE.grad_enabled if STATE.grad_enabled != grad_mode else None
        STATE.grad_enabled = grad_mode  # the rest of the trace runs in the caller's mode
        for p in arg_proxies:
            end_recording(p)
        return _program(name, fn, fwd, tracer, arg_proxies, out, flat, tuple(input_hooks), after)
    except GraphBreak:
        _creation.default_generator.set_state(rng)  # the eager run then draws what eager would
        raise
    finally:
        STATE.grad_enabled = grad_mode if after is None else after
        _undo_mutations(tracer)
        undo_grads(tracer)


def _argument_names(fn, flat, tree):
    """The function's parameter name for each positional tensor argument (None elsewhere):
    the printed programs then read ``def forward(x, w)``."""
    names = [None] * len(flat)
    if tree is not None:
        return names
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or an object without a signature
        return names
    for i, p in enumerate(params[:len(flat)]):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        names[i] = p.name
    return names


def _undo_mutations(tracer):
    """Put real (captured) tensors mutated while tracing back as they were."""
    for t, old, version, grad_fn, rg, onr in tracer.mutated.values():
        if not isinstance(old, Value):
            t._data.value, t._data.version = old, version
            t.grad_fn, t._rg, t._output_nr = grad_fn, rg, onr


def _outputs(fwd, tracer, arg_proxies, out):
    """Output per leaf of ``out``; the program's output Values; the differentiable outputs."""
    if isinstance(out, Tensor):
        oflat, out_tree = [out], None
    else:
        oflat, out_tree = jax.tree_util.tree_flatten(out, is_leaf=_is_tensor)
    by_id = {id(p): i for i, p in enumerate(arg_proxies)}
    arg_storage = {id(p._data): i for i, p in enumerate(arg_proxies)}
    spec, prog, diff, diff_proxies = [], [], [], []
    seen, storage_of = {}, {}
    with tracer:
        for i, o in enumerate(oflat):
            if not isinstance(o, Tensor):
                spec.append(Output(OutKind.STATIC, obj=o))
            elif id(o) in seen:                    # the same object returned twice
                spec.append(Output(OutKind.SAME, seen[id(o)]))
            elif id(o) in by_id:                   # an input returned as it is
                spec.append(Output(OutKind.ARG, by_id[id(o)]))
            elif not isinstance(o._data.value, Value) or o._data.value.graph is not fwd:
                spec.append(Output(OutKind.OUTSIDE, obj=o))  # a tensor from outside the trace
            elif not o.requires_grad and id(o._data) in arg_storage:
                spec.append(Output(OutKind.ARG_ALIAS, arg_storage[id(o._data)]))  # x.detach()
            elif not o.requires_grad and id(o._data) in storage_of:
                spec.append(Output(OutKind.ALIAS, storage_of[id(o._data)]))       # c.detach()
            else:
                spec.append(Output(OutKind.PROGRAM, len(prog)))
                prog.append(tracer.value_of(o))
                if o.requires_grad and o.grad_fn is not None:
                    diff.append(i)
                    diff_proxies.append(o)
            if isinstance(o, Tensor):
                seen.setdefault(id(o), i)
                storage_of.setdefault(id(o._data), i)
    return tuple(spec), out_tree, prog, tuple(diff), diff_proxies


def _writebacks(fn, tracer, prog):
    """In-place changes of inputs and captured tensors: (target, Value) written back per call."""
    changes = []
    for t, old, version, grad_fn, rg, onr in tracer.mutated.values():
        is_arg = isinstance(old, Value) and old.node.kind is NodeKind.INPUT and old.node.role == "arg"
        if isinstance(old, Value) and not is_arg:
            continue  # an intermediate of the trace: nothing outside sees it
        if t.grad_fn is not grad_fn:
            raise NotImplementedError(
                f"tracegrad.compile: {getattr(fn, '__name__', fn)} changes a tensor that requires "
                "grad in place (its history would have to be rebased outside the compiled "
                "region). Do the in-place update outside the compiled function, under no_grad, "
                "or use an out-of-place op.")
        with tracer:
            changes.append((old.node.payload if is_arg else tracer.value_of(t, old),
                            is_arg, tracer.value_of(t)))
    return changes


def _grad_writes(fwd, tracer, prog):
    """The ``.grad`` of tensors from outside that a backward / zero_grad inside changed: a
    GradWrite each (its new value a program output), and the guards on what the trace read."""
    writes, guards_ = [], []
    with tracer:
        for s in tracer.grad_slots.values():
            t, final = s.t, s.t._grad
            if s.observed:  # the result depends on whether t had a .grad: guarded
                guards_.append(((lambda t=t: t._grad is None), s.before is None,
                                "whether a parameter has a .grad"))
            if final is None:
                if s.before is not None or s.observed:
                    writes.append(GradWrite(t, GradKind.NONE, -1))
                continue
            if final is s.before:
                continue
            v = final._data.value
            if not isinstance(v, Value) or v.graph is not fwd:
                raise NotCompiled("assigning .grad of a tensor from outside", None,
                                  "the assignment would happen once, at trace time")
            if final is s.proxy:
                if v.node.kind is NodeKind.INPUT:
                    continue  # read, not changed
                writes.append(GradWrite(t, GradKind.INPLACE, len(prog)))
            else:
                writes.append(GradWrite(t, GradKind.NEW, len(prog)))
            prog.append(v)
    return tuple(writes), guards_


def _program(name, fn, fwd, tracer, arg_proxies, out, flat, input_hooks, grad_mode_after):
    spec, out_tree, prog, diff, diff_proxies = _outputs(fwd, tracer, arg_proxies, out)
    changes = _writebacks(fn, tracer, prog)
    grad_writes, grad_guards = _grad_writes(fwd, tracer, prog)

    captured = list(tracer.captured.values())
    cap_index = {id(v): k for k, (t, v) in enumerate(captured)}
    writebacks = []
    for target, is_arg, new in changes:
        ref = Ref(Source.ARG, target) if is_arg else Ref(Source.CAPTURED, cap_index[id(target)])
        writebacks.append(Writeback(ref, len(prog)))
        prog.append(new)
    cap_tensors = [t for t, _ in captured]
    sources = guards.captured_sources(fn, flat, cap_tensors)
    names = {src.index: src.name for src in sources}
    for k, (t, v) in enumerate(captured):  # captured tensors by their path: model_0_weight
        if isinstance(t, HostScalar):
            fwd.rename(v, f"hyper{k}")
        elif not isinstance(t, GradOf):
            fwd.rename(v, names.get(k, f"c{k}"))
    cap_names = {id(t): v.name for t, v in captured}
    for k, (t, v) in enumerate(captured):
        if isinstance(t, GradOf):
            fwd.rename(v, f"{cap_names.get(id(t.t), f'c{k}')}_grad")
    restore = {id(t._data): old for t, old, *_ in tracer.mutated.values() if not isinstance(old, Value)}

    # the inputs that get gradients: whenever an output has history (grad mode may have been
    # switched on inside only), every argument and captured tensor that requires grad
    targets, target_tensors = [], []
    if diff and not tracer.freed:
        for i, p in enumerate(arg_proxies):
            if p.requires_grad:
                targets.append(Ref(Source.ARG, i))
                target_tensors.append(p)
        for k, (t, v) in enumerate(captured):
            if t.requires_grad:
                targets.append(Ref(Source.CAPTURED, k))
                target_tensors.append(t)
    derived = autodiff.derive(name, tracer, diff_proxies, target_tensors) if targets else None

    n_prog = len(prog)
    fwd.outputs = prog + (list(derived.residuals) if derived else [])
    cse(fwd)
    dce(fwd)
    fwd.lint()
    backward = None
    if derived is not None:
        # residuals that are forward inputs are passed straight from the call's inputs
        pos = {id(v): i for i, v in enumerate(fwd.inputs)}
        residuals, returned = [], []
        for v in fwd.outputs[n_prog:]:
            if id(v) in pos:
                residuals.append(Residual(ResidualFrom.INPUT, pos[id(v)]))
            else:
                residuals.append(Residual(ResidualFrom.OUTPUT, len(returned)))
                returned.append(v)
        fwd.outputs = fwd.outputs[:n_prog] + returned
        backward = BackwardProgram(derived.graph, derived.args, derived.outputs, derived.consts,
                                   tuple(residuals), derived.grad_present, derived.grad_meta,
                                   derived.has_hooks)
    return Program(
        name=name, forward=fwd, n_outputs=n_prog, outputs=spec, out_tree=out_tree,
        diff_outputs=diff,
        retain_outputs=frozenset(nr for nr, p in enumerate(diff_proxies) if p._retains),
        writebacks=tuple(writebacks), input_hooks=input_hooks, grad_mode_after=grad_mode_after,
        captured=tuple(Captured(t, *(_meta_of(t) if isinstance(t, HostInput) else
                                     _meta_of(restore.get(id(t._data), t._data.value))), t._rg)
                       for t in cap_tensors),
        captured_sources=sources,
        targets=tuple(targets),
        ops=tuple(n.op.name for n in fwd.nodes if n.kind is NodeKind.CALL),
        backward=backward,
        grad_writes=grad_writes,
        host_guards=tuple(grad_guards) + tuple(tracer.host_guards),
        host_effects=tuple(tracer.host_effects),
        freed=bool(diff) and tracer.freed)


def _meta_of(v):
    return tuple(v.shape), v.dtype
