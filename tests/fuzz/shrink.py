"""Reduce a disagreeing program to a minimal one that still disagrees the same way.

Greedy: try each simplification in turn (drop the tail or simplify it, drop a body step with
everything that depends on it, splice a step out by renaming its output to its input, drop
an unused input, shrink an input's shape, simplify its values, drop grad-mode wrappers); keep
the first that still fails, and start again until none does or the budget is spent.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

__all__ = ["shrink"]


def shrink(program, still_fails, budget=150):
    """The smallest program found for which ``still_fails(candidate)`` holds (``program``
    itself must fail). ``budget`` caps the calls of ``still_fails``."""
    best = program
    calls = 0
    progress = True
    while progress and calls < budget:
        progress = False
        for cand in _candidates(best):
            if calls >= budget:
                break
            calls += 1
            try:
                ok = still_fails(cand)
            except Exception:  # noqa: BLE001 - a candidate that breaks the harness is no good
                ok = False
            if ok:
                best, progress = cand, True
                break
    return best


def _with(program, **changes):
    p = copy.deepcopy(program)
    for k, v in changes.items():
        setattr(p, k, v)
    return p


def _dependents(program, k):
    """Body step ``k`` and every later step that reads what it (or they) define."""
    gone = {k}
    names = set(program.body[k].defines)
    for j in range(k + 1, len(program.body)):
        s = program.body[j]
        if names & set(s.reads):
            gone.add(j)
            names |= set(s.defines)
    return gone, names


def _candidates(p):
    # the tail first: most disagreements are in the forward
    if p.tail is not None:
        yield _with(p, tail=None)
        t = p.tail
        for change in (dict(repeat=0, retain=False), dict(second=False, create=False),
                       dict(second=False), dict(create=False), dict(implicit=False)):
            if any(getattr(t, k) != v for k, v in change.items()):
                yield _with(p, tail=dataclasses.replace(t, **change))
        if len(t.outs) > 1:
            for o in t.outs:
                yield _with(p, tail=dataclasses.replace(t, outs=[x for x in t.outs if x != o]))
        if t.kind == "grad" and len(t.xs) > 1:
            for x in t.xs:
                yield _with(p, tail=dataclasses.replace(t, xs=[y for y in t.xs if y != x]))
        if t.kind == "grad":
            yield _with(p, tail=dataclasses.replace(t, kind="backward", second=False))
    if p.call_under_no_grad:
        yield _with(p, call_under_no_grad=False)
    # body steps, last first
    for k in reversed(range(len(p.body))):
        gone, names = _dependents(p, k)
        tail = p.tail
        if tail is not None and names & (set(tail.outs) | set(tail.xs)):
            tail = None
        yield _with(p, body=[s for j, s in enumerate(p.body) if j not in gone], tail=tail)
    for k, s in enumerate(p.body):
        if len(s.defines) == 1 and s.reads:   # splice out: uses of its output read its input
            old, new = s.defines[0], s.reads[0]
            body = [t.renamed(old, new) for t in p.body[k + 1:]]
            tail = p.tail
            if tail is not None:
                tail = dataclasses.replace(tail, outs=[new if o == old else o for o in tail.outs])
                if tail.outs.count(new) > 1 or new in tail.xs:
                    tail = None
            yield _with(p, body=p.body[:k] + body, tail=tail)
        if s.code.startswith("with "):      # drop a grad-mode wrapper
            inner = "\n".join(ln[4:] for ln in s.code.split("\n")[1:])
            yield _with(p, body=p.body[:k] + [dataclasses.replace(s, code=inner)] + p.body[k + 1:])
    # inputs
    used = {n for s in p.body for n in s.reads} | (set(p.tail.xs) | set(p.tail.outs) if p.tail else set())
    for k, inp in enumerate(p.inputs):
        if not (set(inp.names()) & used):
            yield _with(p, inputs=p.inputs[:k] + p.inputs[k + 1:])
    for k, inp in enumerate(p.inputs):
        for new in _smaller_inputs(inp):
            yield _with(p, inputs=p.inputs[:k] + [new] + p.inputs[k + 1:])


def _smaller_inputs(inp):
    d = inp.data
    for axis, n in enumerate(d.shape):
        if n > 1:
            yield dataclasses.replace(inp, data=np.take(d, [0], axis=axis))
            if n > 2:
                yield dataclasses.replace(inp, data=np.take(d, list(range(n // 2)), axis=axis))
    if d.ndim and d.shape[0] == 1:
        yield dataclasses.replace(inp, data=d.reshape(d.shape[1:]))
    if inp.kind == "nonleaf":
        yield dataclasses.replace(inp, hook=None) if inp.hook else dataclasses.replace(inp, kind="leaf")
    if inp.dtype.startswith("float"):
        simple = np.round(d * 2) / 2
        if not np.array_equal(simple, d):
            yield dataclasses.replace(inp, data=simple)
        if inp.dtype == "float32":
            yield dataclasses.replace(inp, dtype="float64")

