"""IR -> Python source -> function. Statements are built as ``ast`` nodes and printed by
``to_source`` (the one place astor is used, with ``ast.unparse`` as the fallback); the
printed program is registered with ``linecache`` so tracebacks and pdb show its lines."""
from __future__ import annotations

import ast
import functools
import inspect
import itertools
import linecache
import math
import types

from typing import Callable, NamedTuple

import jax.numpy as jnp

from .. import _dtype as D
from .._device import device as _device_cls
from ..ir.graph import NodeKind, Value, legal_name
from .program import BackwardProgram, ResidualFrom

__all__ = ["to_source", "Generated", "emit", "emit_joint", "compile_source", "op_function"]

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
    """The generated module's namespace: op functions by name, and non-literal constants.

    An op whose name would shadow a Python builtin (``sum``, ``abs``, ``max``, ``pow``) or a
    value of the program is called through the ``ops`` namespace (``ops.sum(t7)``), as
    torch.fx calls ``torch.sum``; every other op by its own name (``mul(t6, t6)``)."""

    def __init__(self, value_names=()):
        self.ns = {"math": math}
        self._names = {}
        self._values = set(value_names)
        self._ops = types.SimpleNamespace()

    def ref(self, obj, hint):
        key = id(obj)
        if key in self._names:
            return self._names[key]
        name = hint
        k = 1
        while (name in self.ns and self.ns[name] is not obj) or name in self._values:
            name = f"{hint}_{k}"
            k += 1
        self.ns[name] = obj
        self._names[key] = name
        return name

    def op(self, op):
        """The expression that calls ``op``: ``mul`` or ``ops.sum``."""
        name = op.name
        fn = op_function(op)
        if legal_name(name) == name and name not in self._values and \
                self.ns.get(name, fn) is fn and name != "ops":
            self.ns[name] = fn
            return ast.Name(name, ast.Load())
        setattr(self._ops, name, fn)
        self.ns["ops"] = self._ops
        return ast.Attribute(ast.Name("ops", ast.Load()), name, ast.Load())


_DEFAULTS = {}


def _defaults(op):
    """``{param: default}`` of the op's keyword parameters, from its impl and its public
    function (the impl often takes every parameter as a required keyword)."""
    d = _DEFAULTS.get(op)
    if d is None:
        d = {}
        for f in (getattr(op, "public", None), op.impl):
            try:
                params = inspect.signature(f).parameters.values()
            except (TypeError, ValueError):  # no signature (a builtin, a C function)
                continue
            d.update({p.name: p.default for p in params if p.default is not p.empty})
        _DEFAULTS[op] = d
    return d


def _same(a, b):
    return type(a) is type(b) and (a is b or a == b)


def op_function(op):
    """What a program calls for ``op``: its impl, with the defaults of the parameters the
    printed call leaves out (so ``sum(t7)`` runs as ``impl(t7, dim=None, ...)``)."""
    fn = _FUNCTIONS.get(op)
    if fn is None:
        try:
            params = inspect.signature(op.impl).parameters.values()
        except (TypeError, ValueError):
            params = ()
        missing = {p.name: _defaults(op)[p.name] for p in params
                   if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name in _defaults(op)}
        fn = functools.partial(op.impl, **missing) if missing else op.impl
        _FUNCTIONS[op] = fn
    return fn


_FUNCTIONS = {}


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
        defaults = _defaults(node.op)
        fn = op_function(node.op)
        given = fn.keywords if isinstance(fn, functools.partial) else {}
        keywords = [ast.keyword(k, _literal(v, g)) for k, v in node.params.items()
                    if not (k in defaults and _same(v, defaults[k])
                            and (k in given or _takes_default(node.op, k)))]
        call = ast.Call(g.op(node.op), [_literal(a, g) for a in node.args], keywords)
    else:  # HOOK
        fn = ast.Name(g.ref(node.payload, node.params.get("what", "hook")), ast.Load())
        call = ast.Call(fn, [_literal(node.args[0], g)], [])
    return ast.Assign([out], call, lineno=0)


def _takes_default(op, name):
    """Whether the impl itself has a default for parameter ``name``."""
    try:
        p = inspect.signature(op.impl).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return p is not None and p.default is not p.empty and _same(p.default, _defaults(op)[name])


def generate(graph, fn_name, header, arg_values, out_values):
    """Source of ``def fn_name(*args): ... return (outs...)`` for ``graph`` and its globals.

    Each statement ends with a ``# f32[4, 8]`` comment; a ``# file.py:12: y = x * w`` comment
    precedes the statements made by each new user line."""
    g = _Globals(n.out.name for n in graph.nodes if n.out is not None)
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


class Generated(NamedTuple):
    """A printed program and the Python function exec'd from it (not yet jitted)."""
    source: str
    fn: Callable


def emit(graph, which, fn_name, arg_values, out_values) -> Generated:
    """The ``which`` ("forward"/"backward") program of ``graph`` as source and function."""
    header = [f"tracegrad {which} program for {fn_name}() -- generated by tracegrad.compile",
              "from the traced IR; each line: value = op(args)  # dtype[shape]"]
    source, ns = generate(graph, which, header, arg_values, out_values)
    fn, _ = compile_source(source, ns, which, f"{fn_name}.{which}")
    return Generated(source, fn)


def _name(n, ctx=None):
    return ast.Name(n, ctx or ast.Load())


def _call(fn, args):
    return ast.Call(_name(fn), args, [])


def emit_joint(fn_name, input_names, n_outputs, backward: BackwardProgram, forward_fn,
               backward_fn) -> Generated:
    """The joint program: the forward, then the backward seeded with the implicit gradient
    ``ones`` of the one scalar output -- what ``jax.jit(jax.value_and_grad(f))`` computes, as
    one XLA program. It calls the two printed programs, so it reads as their composition; XLA
    sees through the calls and fuses across them."""
    consts = [f"k{i}" for i in range(len(backward.consts))]
    residuals = [_name(input_names[r.index]) if r.source is ResidualFrom.INPUT else
                 ast.Subscript(_name("f"), ast.Constant(n_outputs + r.index), ast.Load())
                 for r in backward.residuals]
    shape, dtype = backward.grad_meta[0]
    seed = _call("ones", [ast.Constant(tuple(shape)), ast.Constant(str(dtype))])
    body = [
        ast.Assign([_name("f", ast.Store())], _call("forward", [_name(n) for n in input_names]),
                   lineno=0),
        ast.Return(ast.Tuple([
            ast.Subscript(_name("f"), ast.Slice(None, ast.Constant(n_outputs), None), ast.Load()),
            _call("backward", residuals + [_name(c) for c in consts] + [seed])], ast.Load())),
    ]
    fdef = ast.FunctionDef(
        name="joint", args=ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in input_names + consts],
                                         vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                                         defaults=[]),
        body=body, decorator_list=[], returns=None, type_params=[], lineno=0)
    header = [f"# tracegrad joint program for {fn_name}() -- the forward, then the backward",
              "# seeded with d(out)/d(out) = 1, in one XLA program (used once a backward with the",
              "# implicit gradient has been seen; returns (forward outputs, input gradients))"]
    source = "\n".join(header) + "\n" + to_source(ast.Module([fdef], type_ignores=[])) + "\n"
    ns = {"forward": forward_fn, "backward": backward_fn, "ones": jnp.ones}
    fn, _ = compile_source(source, ns, "joint", f"{fn_name}.joint")
    return Generated(source, fn)
