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
from ..autograd import grad_mode as _gm
from ..autograd.engine import run_backward
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
    for a in flat:
        if isinstance(a, Tensor) and id(a) not in proxies:  # Parameters too
            v = fwd.input(a.shape, a._data.value.dtype, "arg", payload=len(tensors), name=f"a{len(tensors)}")
            proxies[id(a)] = proxy(v, a, a.requires_grad)
            tensors.append(a)
    pflat = [proxies[id(a)] if isinstance(a, Tensor) else a for a in flat]
    if tree is None:
        pargs, pkwargs = pflat, {}
    else:
        pargs, pkwargs = jax.tree_util.tree_unflatten(tree, pflat)
    tracer = Tracer(fwd)
    with tracer:
        out = fn(*pargs, **pkwargs)
    arg_proxies = [proxies[id(t)] for t in tensors]
    captured = list(tracer.captured.values())
    for k, (t, v) in enumerate(captured):
        v.name = f"c{k}"
    entry.captured = [(t, t._data.value.shape, t._data.value.dtype, t._rg) for t, _ in captured]

    # outputs
    if isinstance(out, Tensor):
        oflat, entry.out_tree = [out], None
    else:
        oflat, entry.out_tree = jax.tree_util.tree_flatten(out, is_leaf=_is_tensor)
    by_id = {id(p): i for i, p in enumerate(arg_proxies)}
    cap_by_id = {id(t): k for k, (t, _) in enumerate(captured)}
    spec, prog, diff, diff_proxies = [], [], [], []
    with tracer:
        for i, o in enumerate(oflat):
            if not isinstance(o, Tensor):
                spec.append(("static", o))
            elif id(o) in by_id:
                spec.append(("arg", by_id[id(o)]))
            elif id(o) in cap_by_id:
                spec.append(("cap", cap_by_id[id(o)]))
            else:
                spec.append(("prog", len(prog)))
                prog.append(tracer.value_of(o))
                if o.requires_grad and o.grad_fn is not None:
                    diff.append(i)
                    diff_proxies.append(o)
    captured = list(tracer.captured.values())  # outputs may have lifted new constants
    entry.captured = [(t, t._data.value.shape, t._data.value.dtype, t._rg) for t, _ in captured]
    entry.out_spec = spec
    entry.n_prog_out = len(prog)
    entry.diff_outputs = diff
    entry.retain_outputs = {nr for nr, p in enumerate(diff_proxies) if p._retains}
    entry.ops = [n.op.name for n in fwd.nodes if n.kind is NodeKind.CALL]

    targets, target_tensors = [], []
    if diff and _gm._state.enabled:
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
    fwd.outputs = prog + residual_values
    cse(fwd)
    dce(fwd)
    fwd.lint()
    entry.fwd_graph = fwd
    # residuals that are forward inputs are passed straight from the call's inputs
    n_prog = len(prog)
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
