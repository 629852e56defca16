"""Guards: the key that picks a compiled program for a call, why a call missed, and how a
captured tensor is reached (re-checked at each call, so rebinding a name is a miss).

A key is (grad mode, per-argument parts) for positional tensors -- the hot path -- or (grad
mode, pytree structure, per-leaf parts, aliasing) otherwise. A tensor's part is its shape,
dtype, requires_grad, whether it is a leaf, and its device.
"""
from __future__ import annotations

import jax

from .._state import STATE
from .._tensor import Tensor
from .program import CapturedSource

__all__ = ["RECOMPILE_LIMIT", "tensor_key", "call_key", "miss_reason", "check_captured",
           "captured_sources", "unique_tensors", "is_module"]

RECOMPILE_LIMIT = 8


def _is_tensor(x):
    return isinstance(x, Tensor)


def tensor_key(x):
    v = x._data.value
    return (v.shape, v.dtype, x._rg, x.grad_fn is None, x._device)


def _leaf_key(x):
    if isinstance(x, Tensor):
        return tensor_key(x)
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


def call_key(args, kwargs):
    """The guard key of a call, its flattened arguments and tree, and the key's parts
    (tree, grad mode, per-leaf parts, aliasing) for the miss reason."""
    mode = STATE.grad_enabled
    if not kwargs:
        try:
            parts = tuple(map(tensor_key, args))
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


def miss_reason(last, desc):
    """Why a call with key parts ``desc`` missed, given the last traced key parts."""
    if last is None:
        return "first call"
    (tree0, mode0, parts0, _), (tree, mode, parts, _) = last, desc
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


def check_captured(program, flat=None):
    """None when the program's captured tensors still hold, else why not."""
    for fn, expected, desc in program.host_guards:  # (first: a .grad must be there to be read)
        got = fn()
        if got is not expected and (isinstance(expected, Tensor) or type(got) is not type(expected)
                                    or got != expected):
            return f"{desc} changed since the trace (was {_short(expected)}, now {_short(got)})"
    for k, getter, desc, _ in program.captured_sources:
        if getter(flat) is not program.captured[k].tensor:
            return f"`{desc}` now refers to another tensor than the one captured when traced"
    for k, (t, shape, dtype, rg) in enumerate(program.captured):
        v = t._data.value
        if v.shape != shape or v.dtype != dtype or t._rg != rg:
            return (f"captured tensor #{k} changed: was {dtype}{list(shape)} requires_grad={rg}, "
                    f"now {v.dtype}{list(v.shape)} requires_grad={t._rg}")
    return None


def _short(x):
    return "a tensor" if isinstance(x, Tensor) else repr(x)


def unique_tensors(flat):
    seen = set()
    out = []
    for a in flat:
        if isinstance(a, Tensor) and id(a) not in seen:  # subclasses (Parameter) too
            seen.add(id(a))
            out.append(a)
    return out


# ----------------------------------------------------------------------------- captured sources
def is_module(obj):
    # nn's Module, recognised by what it offers (the compiler is below nn and cannot import it)
    return callable(getattr(obj, "named_parameters", None)) and \
        callable(getattr(obj, "named_buffers", None)) and not isinstance(obj, type)


_MAX_DEPTH = 4  # how deep the search for a captured tensor's path goes (containers, attributes)


def captured_sources(fn, flat, captured):
    """For each captured tensor, how the function reaches it: a closure cell, a global, an
    argument, a module's parameter path, or a path through containers and object attributes
    under them (``cell['w']``, ``opt.param_groups[0]['params'][1]``, ``cfg.scale``, a default
    argument, a helper function's globals) -- a tuple of ``CapturedSource``, re-checked at each
    call. A captured tensor found on no path (one the function itself created while traced)
    is read as the same object at every call."""
    want = {id(t): k for k, t in enumerate(captured)}
    found = {}
    seen = set()

    def visit(obj, getter, desc, name, depth):
        if isinstance(obj, Tensor):
            if id(obj) in want:
                found.setdefault(want[id(obj)], (getter, desc, name))
            return
        if depth > _MAX_DEPTH or id(obj) in seen or len(found) == len(want):
            return
        seen.add(id(obj))
        if is_module(obj):
            for pname, p in list(obj.named_parameters()) + list(obj.named_buffers()):
                if id(p) in want:
                    found.setdefault(want[id(p)], (lambda flat, g=getter, n=pname: _path(g(flat), n),
                                                   f"{desc}.{pname}", f"{name}.{pname}"))
        if isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj):
                visit(item, lambda flat, g=getter, i=i: _item(g(flat), i), f"{desc}[{i}]",
                      f"{name}_{i}", depth + 1)
        elif isinstance(obj, dict):
            for key, item in list(obj.items()):
                if isinstance(key, (str, int)):
                    visit(item, lambda flat, g=getter, k=key: _item(g(flat), k), f"{desc}[{key!r}]",
                          f"{name}_{key}", depth + 1)
        elif hasattr(obj, "__code__") or hasattr(obj, "__func__"):
            _visit_function(obj, depth + 1)
        elif _walkable(obj):
            for attr, item in list(vars(obj).items()):
                visit(item, lambda flat, g=getter, a=attr: getattr(g(flat), a, None),
                      f"{desc}.{attr}", f"{name}_{attr}", depth + 1)

    def _visit_function(f, depth):
        target = getattr(f, "__func__", f)
        owner = getattr(f, "__self__", None)
        if owner is not None:
            visit(owner, lambda flat, o=owner: o, type(owner).__name__, "self", depth)
        code = getattr(target, "__code__", None)
        if code is None:
            return
        for cname, cell in zip(code.co_freevars, getattr(target, "__closure__", None) or ()):
            try:
                visit(cell.cell_contents, lambda flat, c=cell: c.cell_contents, cname, cname,
                      depth)
            except ValueError:  # empty cell
                pass
        for i, dflt in enumerate(getattr(target, "__defaults__", None) or ()):
            visit(dflt, lambda flat, t=target, i=i: _item(t.__defaults__, i),
                  f"{code.co_name} default {i}", f"default{i}", depth)
        for kname, dflt in (getattr(target, "__kwdefaults__", None) or {}).items():
            visit(dflt, lambda flat, t=target, n=kname: _item(t.__kwdefaults__, n),
                  f"{code.co_name} default {kname}", kname, depth)
        g = getattr(target, "__globals__", {})
        for gname in sorted(_global_names(code)):
            if gname in g:
                visit(g[gname], lambda flat, g=g, n=gname: g.get(n), gname, gname, depth)

    for i, a in enumerate(flat):  # modules and containers passed as arguments first
        if not isinstance(a, Tensor):
            visit(a, lambda flat, i=i: flat[i], f"argument {i}", f"arg{i}", 0)
    _visit_function(fn, 0)
    return tuple(CapturedSource(k, getter, desc, name)
                 for k, (getter, desc, name) in sorted(found.items()))


def _walkable(obj):
    # plain instances whose attributes may hold tensors (an optimizer, a config object);
    # not classes, modules or functions
    d = getattr(obj, "__dict__", None)
    return isinstance(d, dict) and not isinstance(obj, type) and \
        type(obj).__module__ not in ("builtins",) and not hasattr(obj, "__file__")


def _item(obj, key):
    try:
        return obj[key]
    except (IndexError, KeyError, TypeError):
        return None


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
