"""IR: ``Graph`` (inputs, nodes, outputs), ``Node`` (kind, op object, args, params, source
location), ``Value`` (SSA name, shape, dtype, the facts autograd knew at trace time).

Nodes point to ``Op`` objects from the registry, never to name strings; node kinds are an
Enum. The grammar and the invariants ``Graph.lint()`` checks are written in docs/ir.md.
"""
from __future__ import annotations

import builtins
import enum
import keyword
import re

import numpy as np

__all__ = ["NodeKind", "Value", "Node", "Graph", "legal_name"]

_RESERVED = set(dir(builtins)) | set(keyword.kwlist) | {"ops", "math"}


def legal_name(hint: str) -> str:
    """``hint`` made a Python identifier that shadows no builtin or keyword
    (``model.0.weight`` -> ``model_0_weight``, ``sum`` -> ``sum_``)."""
    name = re.sub(r"\W", "_", hint).strip("_") or "v"
    if name[0].isdigit():
        name = f"v{name}"
    return name + "_" if name in _RESERVED else name


class NodeKind(enum.Enum):
    INPUT = "input"      # a program input: an argument, a captured tensor, a residual, a grad
    CALL = "call"        # out = op.impl(*args, **params)
    HOOK = "hook"        # out = host callback (a tensor hook / retain_grad) on args[0]


_SHORT = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64", "int8": "i8",
          "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "bool": "b8"}


class Value:
    """An SSA value: what a proxy tensor holds instead of a jax array while tracing.

    Carries ``shape`` and ``dtype`` (a numpy dtype) so tensor code that reads them traces."""

    __slots__ = ("name", "shape", "dtype", "node", "graph", "requires_grad", "is_leaf", "__weakref__")

    def __init__(self, name, shape, dtype, graph, node=None):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.graph = graph
        self.node = node
        self.requires_grad = False
        self.is_leaf = True

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def type_str(self):
        return f"{_SHORT.get(self.dtype.name, self.dtype.name)}[{', '.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"%{self.name}: {self.type_str()}"


class Node:
    """One IR instruction. ``args`` holds Values and Python literals (scalars, None)."""

    __slots__ = ("kind", "op", "args", "params", "out", "loc", "role", "payload")

    def __init__(self, kind, op=None, args=(), params=None, out=None, loc=None, role=None,
                 payload=None):
        self.kind = kind
        self.op = op
        self.args = list(args)
        self.params = params or {}
        self.out = out
        self.loc = loc          # (filename, lineno, source line) of the user's code
        self.role = role        # INPUT nodes: "arg", "captured", "residual", "grad"
        self.payload = payload  # INPUT: index/tensor ref; HOOK: the callback

    def __repr__(self):
        if self.kind is NodeKind.INPUT:
            return f"{self.out!r} = input[{self.role}]"
        args = ", ".join(f"%{a.name}" if isinstance(a, Value) else repr(a) for a in self.args)
        if self.kind is NodeKind.HOOK:  # hook(%g) or retain_grad(%g)
            return f"{self.out!r} = {self.params.get('what', 'hook')}({args})"
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"{self.out!r} = {self.op.name}({args}{params})"


class Graph:
    """A traced program: ordered nodes, inputs (INPUT nodes) and outputs (Values)."""

    def __init__(self, name="graph", prefix="t"):
        self.name = name
        self.prefix = prefix
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self._count = 0
        self._n_inputs = 0
        self._taken = set()  # the namespace: every Value name of this graph, unique

    def _fresh(self, prefix=None):
        while True:
            n = f"{prefix or self.prefix}{self._count}"
            self._count += 1
            if n not in self._taken:
                self._taken.add(n)
                return n

    def unique(self, hint) -> str:
        """A legal name from ``hint``, not yet used in this graph (``w``, ``w_1``, ...)."""
        base = name = legal_name(hint)
        k = 1
        while name in self._taken or re.fullmatch(re.escape(self.prefix) + r"\d+", name):
            name = f"{base}_{k}"
            k += 1
        self._taken.add(name)
        return name

    def rename(self, v: "Value", hint) -> str:
        """Give ``v`` the name ``hint`` (made legal and unique); returns it."""
        self._taken.discard(v.name)
        v.name = self.unique(hint)
        return v.name

    def input(self, shape, dtype, role, payload=None, name=None) -> Value:
        v = Value(self.unique(name) if name else self._fresh(), shape, dtype, self)
        node = Node(NodeKind.INPUT, out=v, role=role, payload=payload)
        v.node = node
        self._n_inputs = sum(1 for n in self.nodes if n.kind is NodeKind.INPUT)
        self.nodes.insert(self._n_inputs, node)  # inputs stay ahead of the calls
        return v

    def call(self, op, args, params, shape, dtype, loc=None) -> Value:
        v = Value(self._fresh(), shape, dtype, self)
        node = Node(NodeKind.CALL, op=op, args=args, params=params, out=v, loc=loc)
        v.node = node
        self.nodes.append(node)
        return v

    def hook(self, arg: Value, callback, loc=None, what="hook") -> Value:
        v = Value(self._fresh(), arg.shape, arg.dtype, self)
        node = Node(NodeKind.HOOK, args=[arg], out=v, loc=loc, payload=callback, params={"what": what})
        v.node = node
        self.nodes.append(node)
        return v

    @property
    def inputs(self) -> list[Value]:
        return [n.out for n in self.nodes if n.kind is NodeKind.INPUT]

    def calls(self):
        return [n for n in self.nodes if n.kind is not NodeKind.INPUT]

    def lint(self):
        """Check the invariants: SSA (each value defined once, before use, in this graph),
        inputs first, args are Values of this graph or literals, outputs defined."""
        defined = set()
        seen_call = False
        for n in self.nodes:
            if n.kind is NodeKind.INPUT:
                if seen_call:
                    raise AssertionError(f"input {n.out!r} after a call")
            else:
                seen_call = True
                if n.kind is NodeKind.CALL and n.op is None:
                    raise AssertionError(f"call node {n!r} has no op")
                for a in n.args:
                    if isinstance(a, Value):
                        if a.graph is not self:
                            raise AssertionError(f"{n!r} uses {a!r} from another graph")
                        if id(a) not in defined:
                            raise AssertionError(f"{n!r} uses {a!r} before its definition")
            if n.out is not None:
                if id(n.out) in defined:
                    raise AssertionError(f"{n.out!r} defined twice")
                if n.out.node is not n:
                    raise AssertionError(f"{n.out!r} does not point back to its node")
                defined.add(id(n.out))
        for o in self.outputs:
            if isinstance(o, Value) and id(o) not in defined:
                raise AssertionError(f"output {o!r} is not defined in the graph")
        return True

    def __str__(self):
        lines = [f"graph {self.name}({', '.join(repr(v) for v in self.inputs)}):"]
        for n in self.nodes:
            if n.kind is not NodeKind.INPUT:
                lines.append(f"    {n!r}")
        lines.append(f"    return ({', '.join('%' + o.name if isinstance(o, Value) else repr(o) for o in self.outputs)})")
        return "\n".join(lines)
