"""From a user function to forward and backward IR.

``trace`` runs the function on proxies (forward IR), then derives the backward IR by
running the eager engine itself on IR values: each node's VJP rule -- the same tracegrad
ops that serve eager backward -- is recorded into a second graph. That is source
transformation with one definition per op. Only the gradients of inputs that require grad
are derived, only the forward values the backward reads become residuals, and both graphs
go through DCE and CSE before code generation.
"""
from __future__ import annotations

import jax

from .._tensor import Tensor
from .._state import STATE
from ..autograd.engine import run_backward
from ..autograd.graph import RemovableHandle
from ..ir.graph import Graph, NodeKind, Value
from ..ir.passes import cse, dce
from . import codegen
from .tracer import Tracer, proxy


def _is_tensor(x):
    return isinstance(x, Tensor)


def trace(entry, fn, flat, tree, args, kwargs):
    name = entry.fn_name
    fwd = Graph(f"{name}_forward")
    tensors = []
    proxies = {}
    entry.input_hooks = []

    def record_input_hook(kind, p, hook):
        # hooks / retain_grad on an input inside the function: replayed on the caller's
        # tensor at every call (as eager registers them at every call)
        entry.input_hooks.append((p.__dict__["_arg_index"], kind, hook))
        return RemovableHandle(None) if kind == "hook" else None

    for a in flat:
        if isinstance(a, Tensor) and id(a) not in proxies:  # Parameters too
            v = fwd.input(a.shape, a._data.value.dtype, "arg", payload=len(tensors), name=f"a{len(tensors)}")
            p = proxy(v, a, a.requires_grad)
            p.__dict__["_input_of"] = record_input_hook
            p.__dict__["_arg_index"] = len(tensors)
            proxies[id(a)] = p
            tensors.append(a)
    pflat = [proxies[id(a)] if isinstance(a, Tensor) else a for a in flat]
    if tree is None:
        pargs, pkwargs = pflat, {}
    else:
        pargs, pkwargs = jax.tree_util.tree_unflatten(tree, pflat)
    tracer = Tracer(fwd)
    grad_mode = STATE.grad_enabled
    try:
        with tracer:
            out = fn(*pargs, **pkwargs)
        entry.grad_mode_after = STATE.grad_enabled if STATE.grad_enabled != grad_mode else None
        STATE.grad_enabled = grad_mode  # the rest of the trace runs in the caller's mode
        _finish(entry, fn, fwd, tracer, tensors, proxies, out, flat)
    finally:
        STATE.grad_enabled = grad_mode if entry.__dict__.get("grad_mode_after") is None \
            else entry.grad_mode_after
        _undo_mutations(tracer)


def _undo_mutations(tracer):
    """Put real (captured) tensors mutated while tracing back as they were."""
    for t, old, version, grad_fn, rg, onr in tracer.mutated.values():
        if not isinstance(old, Value):
            t._data.value, t._data.version = old, version
            t.grad_fn, t._rg, t._output_nr = grad_fn, rg, onr


def _finish(entry, fn, fwd, tracer, tensors, proxies, out, flat):
    arg_proxies = [proxies[id(t)] for t in tensors]
    for p in arg_proxies:
        p.__dict__.pop("_input_of", None)

    # outputs
    if isinstance(out, Tensor):
        oflat, entry.out_tree = [out], None
    else:
        oflat, entry.out_tree = jax.tree_util.tree_flatten(out, is_leaf=_is_tensor)
    by_id = {id(p): i for i, p in enumerate(arg_proxies)}
    arg_storage = {id(p._data): i for i, p in enumerate(arg_proxies)}
    spec, prog, diff, diff_proxies = [], [], [], []
    seen, storage_of = {}, {}
    with tracer:
        for i, o in enumerate(oflat):
            if not isinstance(o, Tensor):
                spec.append(("static", o))
            elif id(o) in seen:                    # the same object returned twice
                spec.append(("same", seen[id(o)]))
            elif id(o) in by_id:                   # an input returned as it is
                spec.append(("arg", by_id[id(o)]))
            elif not isinstance(o._data.value, Value) or o._data.value.graph is not fwd:
                spec.append(("obj", o))            # a tensor that existed outside the trace
            elif not o.requires_grad and id(o._data) in arg_storage:
                spec.append(("arg_alias", arg_storage[id(o._data)]))   # x.detach()
            elif not o.requires_grad and id(o._data) in storage_of:
                spec.append(("alias", storage_of[id(o._data)]))        # c.detach()
            else:
                spec.append(("prog", len(prog)))
                prog.append(tracer.value_of(o))
                if o.requires_grad and o.grad_fn is not None:
                    diff.append(i)
                    diff_proxies.append(o)
            if isinstance(o, Tensor):
                seen.setdefault(id(o), i)
                storage_of.setdefault(id(o._data), i)

    # in-place changes of inputs and captured tensors: new values written back at each call
    writebacks = []
    for t, old, version, grad_fn, rg, onr in tracer.mutated.values():
        is_arg = isinstance(old, Value) and old.node.kind is NodeKind.INPUT and old.node.role == "arg"
        if isinstance(old, Value) and not is_arg:
            continue  # an intermediate of the trace: nothing outside sees it
        if t.grad_fn is not grad_fn:
            raise NotImplementedError(
                f"tracegrad.compile: {fn.__name__ if hasattr(fn, '__name__') else fn} changes a "
                "tensor that requires grad in place (its history would have to be rebased "
                "outside the compiled region). Do the in-place update outside the compiled "
                "function, under no_grad, or use an out-of-place op.")
        target = ("arg", old.node.payload) if is_arg else ("cap", tracer.value_of(t, old))
        writebacks.append((target, len(prog)))
        with tracer:
            prog.append(tracer.value_of(t))

    captured = list(tracer.captured.values())
    for k, (t, v) in enumerate(captured):
        v.name = f"c{k}"
    cap_index = {id(v): k for k, (t, v) in enumerate(captured)}
    entry.writebacks = [(("cap", cap_index[id(x)]) if kind == "cap" else (kind, x), j)
                        for (kind, x), j in writebacks]
    restore = {id(t._data): old for t, old, *_ in tracer.mutated.values() if not isinstance(old, Value)}
    entry.captured = [(t, *_meta_of(restore.get(id(t._data), t._data.value)), t._rg) for t, _ in captured]
    entry.cap_sources = _sources(fn, flat, [t for t, _ in captured])
    entry.out_spec = spec
    entry.diff_outputs = diff
    entry.retain_outputs = {nr for nr, p in enumerate(diff_proxies) if p._retains}
    entry.ops = [n.op.name for n in fwd.nodes if n.kind is NodeKind.CALL]

    targets, target_tensors = [], []
    if diff and STATE.grad_enabled:
        for i, p in enumerate(arg_proxies):
            if p.requires_grad:
                targets.append(("arg", i))
                target_tensors.append(p)
        for k, (t, v) in enumerate(captured):
            if t.requires_grad:
                targets.append(("cap", k))
                target_tensors.append(t)
    entry.targets = targets
    residual_values = []
    if targets:
        residual_values = _derive_backward(entry, fwd, tracer, diff_proxies, target_tensors)
    n_prog = len(prog)
    entry.n_prog_out = n_prog
    fwd.outputs = prog + residual_values
    cse(fwd)
    dce(fwd)
    fwd.lint()
    entry.fwd_graph = fwd
    # residuals that are forward inputs are passed straight from the call's inputs
    inputs = fwd.inputs
    pos = {id(v): i for i, v in enumerate(inputs)}
    res_spec, prog_res = [], []
    for v in fwd.outputs[n_prog:]:
        if id(v) in pos:
            res_spec.append(("in", pos[id(v)]))
        else:
            res_spec.append(("out", len(prog_res)))
            prog_res.append(v)
    fwd.outputs = fwd.outputs[:n_prog] + prog_res
    entry.residual_spec = res_spec


def _meta_of(v):
    return v.shape, v.dtype


def _sources(fn, flat, captured):
    """For each captured tensor, how the function reaches it (a closure cell, a global, a
    module attribute path): re-checked at each call, so rebinding a name is a cache miss."""
    want = {id(t): k for k, t in enumerate(captured)}
    found = {}

    def visit(obj, getter, desc):
        if isinstance(obj, Tensor):
            if id(obj) in want:
                found.setdefault(want[id(obj)], (getter, desc))
        elif is_module(obj):
            for pname, p in list(obj.named_parameters()) + list(obj.named_buffers()):
                if id(p) in want:
                    found.setdefault(want[id(p)], (lambda flat, g=getter, n=pname: _path(g(flat), n),
                                                   f"{desc}.{pname}"))

    target = getattr(fn, "__func__", fn)
    owner = getattr(fn, "__self__", None)
    if owner is not None:
        visit(owner, lambda flat, o=owner: o, type(owner).__name__)
    code = getattr(target, "__code__", None)
    if code is not None:
        for cname, cell in zip(code.co_freevars, getattr(target, "__closure__", None) or ()):
            try:
                visit(cell.cell_contents, lambda flat, c=cell: c.cell_contents, cname)
            except ValueError:  # empty cell
                pass
        g = getattr(target, "__globals__", {})
        for gname in _global_names(code):
            if gname in g:
                visit(g[gname], lambda flat, g=g, n=gname: g.get(n), gname)
    for i, a in enumerate(flat):
        if is_module(a):
            visit(a, lambda flat, i=i: flat[i], f"argument {i}")
    return [(k, getter, desc) for k, (getter, desc) in sorted(found.items())]


def is_module(obj) -> bool:
    """Whether ``obj`` is an ``nn.Module``, known by its interface (named parameters and
    buffers): nn is a layer above the compiler, which does not import it."""
    t = type(obj)
    return callable(getattr(t, "named_parameters", None)) and callable(getattr(t, "named_buffers", None))


def _global_names(code):
    names = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            names |= _global_names(c)
    return names


def _path(obj, dotted):
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _derive_backward(entry, fwd, fwd_tracer, diff_proxies, target_tensors):
    bwd = Graph(f"{entry.fn_name}_backward")
    gts = []
    for nr, p in enumerate(diff_proxies):
        v = p._data.value
        g = bwd.input(v.shape, v.dtype, "grad", payload=nr, name=f"g_{v.name}")
        gts.append(Tensor._make(g, p._device))
    entry.grad_meta = [(p._data.value.shape, p._data.value.dtype) for p in diff_proxies]
    btr = Tracer(bwd, parent_values=fwd)
    # captured tensors met again in the backward (values saved by rules) are residuals
    btr.fwd_arrays = {id(t._data.value): v for t, v in fwd_tracer.captured.values()}
    btr.out_index = {id(p): nr for nr, p in enumerate(diff_proxies)}
    with btr:
        grads = run_backward(diff_proxies, gts, True, False, inputs=target_tensors, accumulate=False)
        outs = [btr.value_of(g) if g is not None else None for g in grads]
    entry.grad_present = [o is not None for o in outs]
    bwd.outputs = [o for o in outs if o is not None]
    cse(bwd)
    dce(bwd)
    # drop inputs nothing reads any more (their residuals need not be kept alive)
    used = {id(a) for n in bwd.nodes for a in n.args if isinstance(a, Value)} | {id(o) for o in bwd.outputs}
    bwd.nodes = [n for n in bwd.nodes if n.kind is not NodeKind.INPUT or n.role == "grad" or id(n.out) in used]
    bwd.lint()
    entry.bwd_graph = bwd
    residual_values, bwd_args = [], []
    for n in bwd.nodes:
        if n.kind is not NodeKind.INPUT:
            continue
        bwd_args.append(n.out)
    # order of the backward's arguments: residuals (as the forward returns them), then consts, then grads
    res_nodes = [n for n in bwd.nodes if n.kind is NodeKind.INPUT and n.role == "residual"]
    const_nodes = [n for n in bwd.nodes if n.kind is NodeKind.INPUT and n.role == "captured"]
    grad_nodes = [n for n in bwd.nodes if n.kind is NodeKind.INPUT and n.role == "grad"]
    residual_values = [n.payload for n in res_nodes]
    entry.bwd_consts = [n.payload for n in const_nodes]
    entry.bwd_args = [n.out for n in res_nodes + const_nodes + grad_nodes]
    entry.bwd_outs = bwd.outputs
    return residual_values


def emit(graph, which, fn_name, arg_values, out_values):
    header = [f"tracegrad {which} program for {fn_name}() -- generated by tracegrad.compile",
              "from the traced IR; each line: value = op(args)  # dtype[shape]"]
    source, ns = codegen.generate(graph, which, header, arg_values, out_values)
    fn, _ = codegen.compile_source(source, ns, which, f"{fn_name}.{which}")
    return source, fn


def emit_joint(entry, fwd_py, bwd_py):
    """The joint program: the forward, then the backward seeded with the implicit gradient
    ``ones`` of the one scalar output -- what ``jax.jit(jax.value_and_grad(f))`` computes, as
    one XLA program. Its source calls the two printed programs, so it reads as their
    composition; XLA sees through the calls and fuses across them."""
    n_prog = entry.n_prog_out
    ins = [v.name for v in entry.fwd_graph.inputs]
    consts = [f"k{i}" for i in range(len(entry.bwd_consts))]
    residuals = [ins[i] if kind == "in" else f"f[{n_prog + i}]" for kind, i in entry.residual_spec]
    shape, dtype = entry.grad_meta[0]
    seed = f"ones({tuple(shape)!r}, {str(dtype)!r})"
    source = "\n".join([
        f"# tracegrad joint program for {entry.fn_name}() -- the forward, then the backward",
        "# seeded with d(out)/d(out) = 1, in one XLA program (used once a backward with the",
        "# implicit gradient has been seen; returns (forward outputs, input gradients))",
        f"def joint({', '.join(ins + consts)}):",
        f"    f = forward({', '.join(ins)})",
        f"    return f[:{n_prog}], backward({', '.join(residuals + consts + [seed])})",
    ]) + "\n"
    import jax.numpy as jnp
    ns = {"forward": fwd_py, "backward": bwd_py, "ones": jnp.ones}
    fn, _ = codegen.compile_source(source, ns, "joint", f"{entry.fn_name}.joint")
    return source, fn
