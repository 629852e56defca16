"""``tracegrad.compiler.explain(f, *args)``: what a call would trace, and whether it would hit
the cache (and if not, which guard fails)."""
from __future__ import annotations

import collections
import dataclasses


from . import guards
from .call import CompiledFunction
from .trace import function_name, trace
from .tracer import GraphBreak

__all__ = ["ExplainOutput", "explain"]


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
    key, flat, tree, desc = guards.call_key(args, kwargs)
    entry = cf._cache.get(key)
    if entry is not None:
        found = None if entry.eager_only else guards.check_captured(entry.program, flat)
        cache = found or "hit"
    else:
        cache = "miss: " + guards.miss_reason(cf._keys[-1] if cf._keys else None, desc)
    name = function_name(cf.fn)
    try:
        p = trace(cf.fn, flat, tree, name)
    except GraphBreak as err:
        return ExplainOutput(name, cache, str(err), {}, 0, 0, [], "", None)
    counts = collections.Counter(p.ops)
    captured = [f"{dtype}{list(shape)} requires_grad={rg}" for _, shape, dtype, rg in p.captured]
    bwd = p.backward.graph if p.backward is not None else None
    return ExplainOutput(name, cache, None, dict(counts), len(p.forward.calls()),
                         len(bwd.calls()) if bwd is not None else 0, captured, str(p.forward),
                         str(bwd) if bwd is not None else None)
