"""IR -> Python source -> function. Statements are built as ``ast`` nodes and printed by
``to_source`` (the one place astor is used, with ``ast.unparse`` as the fallback); the
printed program is registered with ``linecache`` so tracebacks and pdb show its lines."""
from __future__ import annotations

import ast
import itertools
import linecache
import math

from .. import _dtype as D
from .._device import device as _device_cls
from ..ir.graph import NodeKind, Value

__all__ = ["to_source", "generate", "compile_source"]

try:  # astor's last release predates current Python: keep ast.unparse as the fallback
    import astor as _astor
except Exception:  # pragma: no cover
    _astor = None

_counter = itertools.count()


def to_source(tree) -> str:
    """Print an AST as Python source (astor when it works, else ``ast.unparse``)."""
    if _astor is not None:
        try:
            return _astor.to_source(tree).rstrip("\n")
        except Exception:  # astor may not know a newer node type
            pass
    return ast.unparse(tree)


class _Globals:
    """The generated module's namespace: op impls by name, and non-literal constants."""

    def __init__(self):
        self.ns = {"math": math}
        self._names = {}

    def ref(self, obj, hint):
        key = id(obj)
        if key in self._names:
            return self._names[key]
        name = hint
        k = 1
        while name in self.ns and self.ns[name] is not obj:
            name = f"{hint}_{k}"
            k += 1
        self.ns[name] = obj
        self._names[key] = name
        return name


def _literal(v, g: _Globals):
    if isinstance(v, Value):
        return ast.Name(v.name, ast.Load())
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return ast.Constant(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return ast.Constant(v)
        return ast.Call(ast.Name("float", ast.Load()), [ast.Constant(repr(v))], [])
    if isinstance(v, tuple):
        return ast.Tuple([_literal(x, g) for x in v], ast.Load())
    if isinstance(v, list):
        return ast.List([_literal(x, g) for x in v], ast.Load())
    if isinstance(v, D.dtype):
        return ast.Name(g.ref(v, v.name), ast.Load())
    if isinstance(v, _device_cls):
        return ast.Name(g.ref(v, f"{v.type}{v.index or 0}"), ast.Load())
    return ast.Name(g.ref(v, type(v).__name__.lower()), ast.Load())


def _stmt(node, g: _Globals):
    out = ast.Name(node.out.name, ast.Store())
    if node.kind is NodeKind.CALL:
        fn = ast.Name(g.ref(node.op.impl, node.op.name), ast.Load())
        call = ast.Call(fn, [_literal(a, g) for a in node.args],
                        [ast.keyword(k, _literal(v, g)) for k, v in node.params.items()])
    else:  # HOOK
        fn = ast.Name(g.ref(node.payload, node.params.get("what", "hook")), ast.Load())
        call = ast.Call(fn, [_literal(node.args[0], g)], [])
    return ast.Assign([out], call, lineno=0)


def generate(graph, fn_name, header, arg_values, out_values):
    """Source of ``def fn_name(*args): ... return (outs...)`` for ``graph`` and its globals.

    Each statement ends with a ``# f32[4, 8]`` comment; a ``# file.py:12: y = x * w`` comment
    precedes the statements made by each new user line."""
    g = _Globals()
    lines = [f"# {line}" for line in header]
    sig = ast.FunctionDef(
        name=fn_name, args=ast.arguments(posonlyargs=[], args=[ast.arg(v.name) for v in arg_values],
                                         vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                                         defaults=[]),
        body=[ast.Pass()], decorator_list=[], returns=None, type_params=[], lineno=0)
    head = to_source(ast.Module([sig], type_ignores=[]))
    lines.append(head[:head.rindex("pass")].rstrip())  # the signature, however astor wraps it
    last_loc = None
    for n in graph.nodes:
        if n.kind is NodeKind.INPUT:
            continue
        if n.loc is not None and n.loc != last_loc:
            fname, lineno, text = n.loc
            lines.append(f"    # {fname}:{lineno}: {text}")
            last_loc = n.loc
        stmt = to_source(ast.Module([_stmt(n, g)], type_ignores=[]))
        stmt = stmt.replace("\n", "\n    ")  # a long call astor wraps: indent its continuation
        lines.append(f"    {stmt}  # {n.out.type_str()}")
    ret = ast.Return(ast.Tuple([_literal(v, g) for v in out_values], ast.Load()))
    lines.append("    " + to_source(ast.Module([ret], type_ignores=[])).replace("\n", "\n    "))
    return "\n".join(lines) + "\n", g.ns


def compile_source(source, namespace, fn_name, tag):
    """exec the source from a linecache-registered pseudo file; return the function."""
    filename = f"<tracegrad:{tag}#{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    exec(code, namespace)
    return namespace[fn_name], filename
