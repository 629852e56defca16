"""``tracegrad.compiler.explain(f, *args)``: what a call would trace, and whether it would hit
the cache (and if not, which guard fails)."""
from __future__ import annotations

import collections
import dataclasses


from . import autodiff
from .runtime import CompiledFunction, Entry
from .._errors import GraphBreak


@dataclasses.dataclass
class ExplainOutput:
    name: str
    cache: str                 # "hit" or the reason of the miss
    graph_break: str | None
    op_counts: dict
    forward_nodes: int
    backward_nodes: int
    captured: list
    forward_ir: str
    backward_ir: str | None

    def __str__(self):
        lines = [f"tracegrad.compiler.explain({self.name}):",
                 f"  cache: {self.cache}"]
        if self.graph_break:
            lines.append(f"  graph break: {self.graph_break}")
            return "\n".join(lines)
        ops = ", ".join(f"{k} x{v}" for k, v in self.op_counts.items())
        lines += [f"  ops traced: {ops}",
                  f"  forward program: {self.forward_nodes} nodes; backward program: "
                  f"{self.backward_nodes} nodes",
                  f"  captured tensors (inputs read at each call): {len(self.captured)}"]
        for c in self.captured:
            lines.append(f"    {c}")
        return "\n".join(lines)


def explain(fn, *args, **kwargs) -> ExplainOutput:
    cf = fn if isinstance(fn, CompiledFunction) else CompiledFunction(fn)
    key, flat, tree, desc = cf._key(args, kwargs)
    entry = cf._cache.get(key)
    if entry is not None:
        cache = cf._check_captured(entry, flat) or "hit"
    else:
        cache = "miss: " + cf._miss_reason(desc)
    e = Entry()
    e.fn_name = getattr(cf.fn, "__name__", "fn")
    try:
        autodiff.trace(e, cf.fn, flat, tree, args, kwargs)
    except GraphBreak as err:
        return ExplainOutput(e.fn_name, cache, str(err), {}, 0, 0, [], "", None)
    counts = collections.Counter(e.ops)
    captured = [f"{dtype}{list(shape)} requires_grad={rg}" for _, shape, dtype, rg in e.captured]
    bnodes = len(e.bwd_graph.calls()) if e.bwd_graph is not None else 0
    return ExplainOutput(e.fn_name, cache, None, dict(counts), len(e.fwd_graph.calls()), bnodes,
                         captured, str(e.fwd_graph), str(e.bwd_graph) if e.bwd_graph else None)
