"""The IR on its own (no tracing, no compiler): ``Graph.lint()`` catches each broken
invariant docs/ir.md lists, the graph is a namespace of legal unique names, the printed IR
text, and the CSE and DCE passes."""
from __future__ import annotations

import numpy as np
import pytest

from tracegrad.ir import Graph, Node, NodeKind, Value, cse, dce
from tracegrad.ir.graph import legal_name
from tracegrad.ops import REG


def _bad_graph(kind):
    g = Graph("bad")
    x = g.input((2,), np.float32, "arg")
    mul = REG["mul"]
    if kind == "use before definition":
        other = Graph("other")
        y = other.call(mul, [x, 2], {}, (2,), np.float32)
        z = g.call(mul, [y, 2], {}, (2,), np.float32)
        y.graph = g  # same graph now, but never defined in it
        g.outputs = [z]
    elif kind == "from another graph":
        other = Graph("other")
        w = other.input((2,), np.float32, "arg")
        g.outputs = [g.call(mul, [x, w], {}, (2,), np.float32)]
    elif kind == "defined twice":
        y = g.call(mul, [x, 2], {}, (2,), np.float32)
        g.nodes.append(y.node)
        g.outputs = [y]
    elif kind == "input after a call":
        g.outputs = [g.call(mul, [x, 2], {}, (2,), np.float32)]
        late = Value("late", (2,), np.float32, g)
        late.node = Node(NodeKind.INPUT, out=late, role="arg")
        g.nodes.append(late.node)
    elif kind == "not defined":
        other = Graph("other")
        g.outputs = [other.input((2,), np.float32, "arg")]
    return g


@pytest.mark.parametrize("kind,message", [
    ("use before definition", "before its definition"),
    ("from another graph", "from another graph"),
    ("defined twice", "defined twice"), ("input after a call", "after a call"),
    ("not defined", "is not defined in the graph")])
def test_lint_catches_broken_graphs(kind, message):
    with pytest.raises(AssertionError, match=message):
        _bad_graph(kind).lint()


def test_names_are_legal_and_unique():
    assert legal_name("model.0.weight") == "model_0_weight"
    assert legal_name("sum") == "sum_" and legal_name("lambda") == "lambda_"
    assert legal_name("0w") == "v0w"
    g = Graph("g")
    a = g.input((2,), np.float32, "arg", name="t0")  # would clash with a fresh name
    b = g.input((2,), np.float32, "arg", name="x")
    c = g.input((2,), np.float32, "arg", name="x")
    assert (a.name, b.name, c.name) == ("t0_1", "x", "x_1")
    assert g.call(REG["neg"], [a], {}, (2,), np.float32).name == "t0"


def _demo():
    g = Graph("demo")
    x = g.input((3,), np.float32, "arg", name="x")
    a = g.call(REG["mul"], [x, 2], {}, (3,), np.float32)
    b = g.call(REG["mul"], [x, 2], {}, (3,), np.float32)  # the same as a
    c = g.call(REG["add"], [a, b], {}, (3,), np.float32)
    dead = g.call(REG["exp"], [x], {}, (3,), np.float32)
    hook = g.hook(a, callback=lambda v: v, what="hook")
    g.outputs = [c]
    return g, x, a, b, c, dead, hook


def test_printed_ir_follows_the_grammar():
    g, *_ = _demo()
    assert str(g).splitlines() == [
        "graph demo(%x: f32[3]):",
        "    %t0: f32[3] = mul(%x, 2)",
        "    %t1: f32[3] = mul(%x, 2)",
        "    %t2: f32[3] = add(%t0, %t1)",
        "    %t3: f32[3] = exp(%x)",
        "    %t4: f32[3] = hook(%t0)",
        "    return (%t2)"]
    assert g.lint()


def test_cse_merges_equal_calls_and_dce_keeps_hooks():
    g, x, a, b, c, dead, hook = _demo()
    replaced = cse(g)
    assert replaced == {id(b): a}
    assert c.node.args == [a, a]
    dce(g)
    kinds = [(n.kind, n.out.name) for n in g.nodes]
    assert kinds == [(NodeKind.INPUT, "x"), (NodeKind.CALL, "t0"), (NodeKind.CALL, "t2"),
                     (NodeKind.HOOK, "t4")]  # exp(x) was dead; the hook has side effects
    assert g.lint()


def test_cse_keeps_calls_that_differ_in_params_or_literal_types():
    g = Graph("p")
    x = g.input((2, 2), np.float32, "arg", name="x")
    s0 = g.call(REG["sum"], [x], {"dim": (0,), "keepdim": False, "dtype": None}, (2,), np.float32)
    s1 = g.call(REG["sum"], [x], {"dim": (1,), "keepdim": False, "dtype": None}, (2,), np.float32)
    m0 = g.call(REG["mul"], [x, 2], {}, (2, 2), np.float32)
    m1 = g.call(REG["mul"], [x, 2.0], {}, (2, 2), np.float32)
    g.outputs = [s0, s1, m0, m1]
    assert cse(g) == {}
    assert len(g.calls()) == 4
