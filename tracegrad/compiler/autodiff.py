"""The backward program, derived from the traced forward by source transformation.

``derive`` runs the eager engine itself on IR values: each node's VJP rule -- the same
tracegrad ops that serve eager backward -- is recorded into a second graph. That is one
definition per op for eager backward, create_graph and the compiler. Only the gradients of the
targets are derived, the derivation stops at each target (its own node is left to the eager
engine), only the forward values the backward reads become residuals, and the graph goes
through CSE and DCE.
"""
from __future__ import annotations

from typing import NamedTuple

from .._tensor import Tensor
from ..autograd.engine import run_backward
from ..autograd.graph import Node
from ..ir.graph import Graph, NodeKind, Value
from ..ir.passes import cse, dce
from .tracer import Tracer

__all__ = ["Derivation", "derive"]


class Derivation(NamedTuple):
    graph: Graph
    args: tuple            # residual inputs, then captured inputs, then gradient inputs
    outputs: tuple         # the targets' gradients that are not None
    residuals: tuple       # forward Values, one per residual input
    consts: tuple          # tensors the backward captured, one per captured input
    grad_present: tuple    # per target
    grad_meta: tuple       # (shape, dtype) per differentiable output
    has_hooks: bool


class _Cut(Node):
    """Where the traced graph meets a target (an input that gets a gradient): the backward
    program stops here and hands the gradient to the call's CompiledFunctionBackward. The
    target's own node (its hooks, retain_grad, the eager graph behind it) is left to the eager
    engine, which reaches it after the compiled backward -- so each runs once per backward."""

    def __init__(self, num_outputs):
        super().__init__(())
        self.num_outputs = num_outputs


def _name_gradient(g, of):
    """Name the backward Value ``g`` -- the gradient of the forward value named ``of`` --
    ``g_<of>``, unless it already has a name of its own (an input, or a gradient named
    after a value nearer the output)."""
    v = g._data.value
    if isinstance(v, Value) and v.node.kind is not NodeKind.INPUT and not v.name.startswith("g_"):
        v.graph.rename(v, f"g_{of}")


def _naming_apply(node, of):
    apply = node.apply

    def named_apply(grad_outputs):
        g = grad_outputs[0]
        if g is not None:
            _name_gradient(g, of)
        return apply(grad_outputs)
    return named_apply


def _cut_at_targets(diff_outputs, targets):
    """Point the traced autograd nodes' edges into each target at a ``_Cut`` of their own,
    and return stand-in tensors to capture the targets' gradients at those cuts. Each traced
    node also names the gradient it receives after its forward value (``g_t3``)."""
    cuts = {}
    stand_ins = []
    for t in targets:
        node, nr = t.grad_fn, t._output_nr
        if node is None:
            node, nr = t._accumulator(), 0
        cut = cuts.get(id(node))
        if cut is None:
            cut = cuts[id(node)] = _Cut(node.num_outputs)
        s = Tensor._make(None, t._device)
        s._rg, s.grad_fn, s._output_nr = True, cut, nr
        stand_ins.append(s)
    seen = set()
    stack = [p.grad_fn for p in diff_outputs]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        meta = node._metadata
        if meta and "value" in meta and node.num_outputs == 1:
            node.apply = _naming_apply(node, meta["value"].name)
        nexts = node.next_functions
        if any(n is not None and id(n) in cuts for n, _ in nexts):
            node.next_functions = tuple((cuts[id(n)], nr) if n is not None and id(n) in cuts
                                        else (n, nr) for n, nr in nexts)
        stack.extend(n for n, _ in node.next_functions if n is not None and id(n) not in seen)
    return stand_ins


def _input_name(fwd_tracer, t):
    """The forward program's name for target ``t`` (an argument or a captured tensor)."""
    c = fwd_tracer.captured.get(id(t._data))
    if c is not None:
        return c[1].name
    v = t._data.value
    return v.name if isinstance(v, Value) else None


def derive(name, fwd_tracer, diff_outputs, targets) -> Derivation:
    """The backward of the traced tensors ``diff_outputs`` (proxies whose grad_fn is the
    trace's history) with respect to ``targets`` (argument proxies and captured tensors)."""
    bwd = Graph(f"{name}_backward", prefix="b")  # b0, b1, ...: beside the forward's names
    seeds = []
    for nr, p in enumerate(diff_outputs):
        v = p._data.value
        g = bwd.input(v.shape, v.dtype, "grad", payload=nr, name=f"g_{v.name}")
        seeds.append(Tensor._make(g, p._device))
    btr = Tracer(bwd, parent_values=fwd_tracer.graph)
    # captured tensors met again in the backward (values saved by rules) are residuals
    btr.fwd_arrays = {id(t._data.value): v for t, v in fwd_tracer.captured.values()}
    btr.out_index = {id(p): nr for nr, p in enumerate(diff_outputs)}
    stand_ins = _cut_at_targets(diff_outputs, targets)
    with btr:
        grads = run_backward(diff_outputs, seeds, True, False, inputs=stand_ins, accumulate=False)
        outs = [btr.value_of(g) if g is not None else None for g in grads]
    bwd.outputs = [o for o in outs if o is not None]
    cse(bwd)
    # a returned gradient is named after its input (g_x, g_model_0_weight): the labels
    present = [t for t, o in zip(targets, outs) if o is not None]
    for t, o in zip(present, bwd.outputs):
        of = _input_name(fwd_tracer, t)
        if of and o.node.kind is NodeKind.CALL and sum(x is o for x in bwd.outputs) == 1:
            bwd.rename(o, f"g_{of}")
    dce(bwd)
    # drop inputs nothing reads any more (their residuals need not be kept alive)
    used = {id(a) for n in bwd.nodes for a in n.args if isinstance(a, Value)} | {id(o) for o in bwd.outputs}
    bwd.nodes = [n for n in bwd.nodes
                 if n.kind is not NodeKind.INPUT or n.role == "grad" or id(n.out) in used]
    bwd.lint()
    inputs = [n for n in bwd.nodes if n.kind is NodeKind.INPUT]
    res_nodes = [n for n in inputs if n.role == "residual"]
    const_nodes = [n for n in inputs if n.role == "captured"]
    grad_nodes = [n for n in inputs if n.role == "grad"]
    return Derivation(
        graph=bwd,
        args=tuple(n.out for n in res_nodes + const_nodes + grad_nodes),
        outputs=tuple(bwd.outputs),
        residuals=tuple(n.payload for n in res_nodes),
        consts=tuple(n.payload for n in const_nodes),
        grad_present=tuple(o is not None for o in outs),
        grad_meta=tuple((p._data.value.shape, p._data.value.dtype) for p in diff_outputs),
        has_hooks=any(n.kind is NodeKind.HOOK for n in bwd.nodes))
