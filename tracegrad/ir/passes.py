"""Graph passes: dead-code elimination and common-subexpression elimination."""
from __future__ import annotations

from .graph import NodeKind, Value

__all__ = ["dce", "cse"]


def dce(graph, keep_inputs=True):
    """Drop calls whose results no output needs (hooks are kept: they have side effects)."""
    live = {id(o) for o in graph.outputs if isinstance(o, Value)}
    kept = []
    for n in reversed(graph.nodes):
        if n.kind is NodeKind.INPUT:
            if keep_inputs or id(n.out) in live:
                kept.append(n)
            continue
        if id(n.out) in live or n.kind is NodeKind.HOOK:
            kept.append(n)
            for a in n.args:
                if isinstance(a, Value):
                    live.add(id(a))
    graph.nodes = kept[::-1]
    return graph


def _key(v):
    if isinstance(v, Value):
        return ("v", id(v))
    if isinstance(v, float) and v != v:
        return ("nan",)
    return ("c", type(v).__name__, v)


def cse(graph):
    """Merge calls with the same op, arguments and params (all ops are pure)."""
    seen = {}
    replace = {}
    kept = []
    for n in graph.nodes:
        n.args = [replace.get(id(a), a) if isinstance(a, Value) else a for a in n.args]
        if n.kind is NodeKind.CALL:
            try:
                key = (n.op, tuple(_key(a) for a in n.args), tuple(sorted(n.params.items(), key=lambda kv: kv[0])))
                hash(key)
            except TypeError:
                key = None
            if key is not None:
                prev = seen.get(key)
                if prev is not None:
                    replace[id(n.out)] = prev
                    continue
                seen[key] = n.out
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [replace.get(id(o), o) if isinstance(o, Value) else o for o in graph.outputs]
    return replace
