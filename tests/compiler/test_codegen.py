"""The printed programs and the IR: short, valid, readable Python that cites the user's lines;
``f.ir()`` text; ``Graph.lint()`` on traced graphs; generated source registered with
linecache; ``lowered_text``; ``explain``; the names programs use. (The IR on its own --
lint on broken graphs, the namespace, the passes -- is tests/ir/.)"""
from __future__ import annotations

import ast
import inspect
import linecache
import os
import re
import types

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler.codegen import op_function
from tracegrad.ops import REG

HERE = os.path.basename(__file__)


def spec_cd(a, b):
    c = 2 * a + 3 * b + 1
    d = 2 * c + 1
    return d


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if line.strip() == text:
            return start + k
    raise AssertionError(f"{text!r} not in {fn.__name__}")


@pytest.fixture(scope="module")
def compiled_cd():
    f = tg.compile(spec_cd)
    a = tg.tensor([1., 2.], requires_grad=True)
    b = tg.tensor([1., 2.], requires_grad=True)
    d = f(a, b)
    d.backward(tg.tensor([1., 1.]))
    assert repr((a.grad, b.grad)) == "(tensor([4., 4.]), tensor([6., 6.]))"
    return f


def _assigned_and_loaded(src):
    tree = ast.parse(src)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assigned = []
    for stmt in fn.body:
        if isinstance(stmt, ast.Assign):
            assigned.extend(t.id for t in stmt.targets if isinstance(t, ast.Name))
    loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    params = [a.arg for a in fn.args.args]
    return fn, assigned, loaded, params


def _check_program(src, max_lines):
    compile(src, "<test>", "exec")  # valid Python
    fn, assigned, loaded, params = _assigned_and_loaded(src)
    assert len(assigned) == len(set(assigned)), f"a name is assigned twice (not SSA):\n{src}"
    unused = [n for n in assigned if n not in loaded]
    assert not unused, f"assignments never used: {unused}\n{src}"
    unused_params = [p for p in params if p not in loaded]
    assert not unused_params, f"parameters never read: {unused_params}\n{src}"
    assert isinstance(fn.body[-1], ast.Return)
    n = len(src.strip().splitlines())
    assert n <= max_lines, f"{n} lines (at most {max_lines} expected):\n{src}"
    for line in src.splitlines():
        if re.match(r"\s+(t\d+|b\d+|g_\w+) = ", line):
            assert re.search(r"  # [a-z]+\d*\[[\d, ]*\]$", line), f"no type comment: {line!r}"
    return fn


def test_backward_of_spec_example_is_short_and_readable(compiled_cd):
    src = compiled_cd.source("backward")
    fn = _check_program(src, max_lines=10)
    assert src.startswith("# tracegrad backward program for spec_cd()")
    assert fn.name == "backward" and [a.arg for a in fn.args.args] == ["g_t5"]
    # two linear lines need no residuals: only the incoming gradient is an argument
    assert sum(isinstance(s, ast.Assign) for s in fn.body) == 3
    c_line = _line_of(spec_cd, "c = 2 * a + 3 * b + 1")
    d_line = _line_of(spec_cd, "d = 2 * c + 1")
    # the backward walks the user's lines in reverse
    i_d = src.index(f"# {HERE}:{d_line}: d = 2 * c + 1")
    i_c = src.index(f"# {HERE}:{c_line}: c = 2 * a + 3 * b + 1")
    assert i_d < i_c
    assert "# f32[2]" in src


def test_forward_of_spec_example(compiled_cd):
    src = compiled_cd.source("forward")
    fn = _check_program(src, max_lines=12)
    assert [a.arg for a in fn.args.args] == ["a", "b"]  # the parameters of spec_cd
    assert f"# {HERE}:{_line_of(spec_cd, 'c = 2 * a + 3 * b + 1')}:" in src
    assert f"# {HERE}:{_line_of(spec_cd, 'd = 2 * c + 1')}:" in src
    assert src.count("mul(") == 3 and src.count("add(") == 3


def test_generated_programs_run_as_printed(compiled_cd):
    """exec the printed backward with the op impls as its globals: it is the program."""
    src = compiled_cd.source("backward")
    ns = {op.name: op_function(op) for op in REG.values()}
    ns["ops"] = types.SimpleNamespace(**ns)
    exec(compile(src, "<test>", "exec"), ns)
    (ga, gb) = ns["backward"](np.array([1., 1.], np.float32))
    np.testing.assert_array_equal(np.asarray(ga), [4., 4.])
    np.testing.assert_array_equal(np.asarray(gb), [6., 6.])


def test_generated_source_is_registered_with_linecache(compiled_cd):
    src = compiled_cd.source("backward")
    names = [k for k in linecache.cache if k.startswith("<tracegrad:spec_cd.backward")]
    assert names, "the generated backward is not in linecache (tracebacks could not show it)"
    assert any("".join(linecache.getlines(k)) == src for k in names)


def test_ir_text(compiled_cd):
    fwd = compiled_cd.ir()
    assert fwd.splitlines()[0] == "graph spec_cd_forward(%a: f32[2], %b: f32[2]):"
    assert re.search(r"\n    %t0: f32\[2\] = mul\((%a, 2|2, %a)\)\n", fwd)  # 2 * a
    assert fwd.splitlines()[-1] == "    return (%t5)"
    bwd = compiled_cd.ir("backward")
    assert bwd.splitlines()[0] == "graph spec_cd_backward(%g_t5: f32[2]):"
    assert len(bwd.splitlines()) == 5


def test_traced_graphs_pass_lint(compiled_cd):
    e = compiled_cd._entry()
    assert e.program.forward.lint() and e.program.backward.graph.lint()


def test_backward_saves_only_what_rules_read():
    """``x * w``: the backward reads both inputs (passed straight from the call, not as new
    outputs); ``sin`` keeps its input for ``cos``; no forward value is returned twice."""
    def f(x, w):
        return (x * w).sin()
    cf = tg.compile(f)
    x = tg.randn(3, dtype=tg.float64, requires_grad=True)
    w = tg.randn(3, dtype=tg.float64, requires_grad=True)
    cf(x, w).sum().backward()
    bsrc = cf.source("backward")
    _check_program(bsrc, max_lines=14)
    fwd = _assigned_and_loaded(cf.source("forward"))[0]
    ret = fwd.body[-1].value
    returned = [e.id for e in ret.elts] if isinstance(ret, ast.Tuple) else [ret.id]
    assert len(returned) == len(set(returned)) == 2  # the output and the residual t0 = x * w
    args = [a.arg for a in _assigned_and_loaded(bsrc)[0].args.args]
    assert len(args) == 4  # x, w, the residual, the gradient
    np.testing.assert_allclose(x.grad.numpy(), (w * (x * w).cos()).detach().numpy(), rtol=1e-12)


def test_lowered_text_is_stablehlo(compiled_cd):
    text = compiled_cd.lowered_text()
    assert "stablehlo.multiply" in text or "stablehlo.mul" in text
    assert "tensor<2xf32>" in text
    assert "tensor<2xf32>" in compiled_cd.lowered_text("backward")


def test_source_before_any_call_says_what_to_do():
    f = tg.compile(spec_cd)
    with pytest.raises(RuntimeError, match="has not been called yet"):
        f.source()
    f(tg.ones(2), tg.ones(2))
    with pytest.raises(ValueError, match="'forward', 'backward' or 'joint'"):
        f.source("sideways")


def test_backward_source_without_backward():
    g = tg.compile(lambda x: x * 2)
    g(tg.ones(2))  # nothing requires grad: no backward program
    with pytest.raises(RuntimeError, match="no backward"):
        g.source("backward")


def test_explain_reports_cache_ops_and_graph_breaks(compiled_cd):
    a = tg.tensor([1., 2.], requires_grad=True)
    b = tg.tensor([1., 2.], requires_grad=True)
    out = tg.compiler.explain(compiled_cd, a, b)
    assert out.cache == "hit"
    assert out.op_counts == {"mul": 3, "add": 3}
    assert (out.forward_nodes, out.backward_nodes) == (6, 3)
    text = str(out)
    assert "ops traced: mul x3, add x3" in text and "backward program: 3 nodes" in text
    calls_before = compiled_cd.stats["calls"]
    miss = tg.compiler.explain(compiled_cd, tg.ones(3), tg.ones(3))
    assert miss.cache.startswith("miss: argument 0") and "float32[3]" in miss.cache
    assert compiled_cd.stats["calls"] == calls_before  # explain does not call

    def branchy(x):
        if x.sum() > 0:
            return x
        return -x
    out = tg.compiler.explain(branchy, tg.ones(2))
    assert out.graph_break and f"{HERE}:{_line_of(branchy, 'if x.sum() > 0:')}" in out.graph_break
    assert "graph break:" in str(out)


# ----------------------------------------------------------------------------- names
def _mlp_sources():
    import tracegrad.nn as nn
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))

    def loss_fn(x):
        h = model(x)
        return (h * h).sum().abs().max() / x.shape[0]
    cf = tg.compile(loss_fn)
    x = tg.randn(8, 4)
    cf(x).backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    return cf, model, x, grads


def test_printed_programs_use_parameter_and_path_names():
    cf, model, x, _ = _mlp_sources()
    fwd = _check_program(cf.source("forward"), max_lines=20)
    assert [a.arg for a in fwd.args.args] == ["x", "model_0_weight", "model_0_bias",
                                              "model_2_weight", "model_2_bias"]
    bsrc = cf.source("backward")
    bwd = _check_program(bsrc, max_lines=30)
    # residuals keep their forward names; the seed is the gradient of the output
    fwd_names = {n.id for n in ast.walk(fwd) if isinstance(n, ast.Name)}
    seeds = [a.arg for a in bwd.args.args if a.arg.startswith("g_")]
    assert len(seeds) == 1 and seeds[0][2:] in fwd_names
    assert all(a.arg in fwd_names for a in bwd.args.args if not a.arg.startswith("g_"))
    # the returned gradients are labelled by the inputs they are the gradients of
    ret = bwd.body[-1].value
    assert [e.id for e in ret.elts] == ["g_model_0_weight", "g_model_0_bias",
                                        "g_model_2_weight", "g_model_2_bias"]
    # a gradient of a forward value t<k> is g_t<k>: and t<k> is a forward name
    for name in re.findall(r"\b(g_t\d+)\b", bsrc):
        assert name[2:] in fwd_names, name


def test_no_builtin_is_shadowed_and_defaults_are_not_printed():
    import builtins
    cf, *_ = _mlp_sources()
    for which in ("forward", "backward", "joint"):
        src = cf.source(which)
        tree = ast.parse(src)
        bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not (bound | called) & set(dir(builtins)), src
    fsrc = cf.source("forward")
    assert "ops.sum(t" in fsrc and "ops.abs(" in fsrc
    sum_line = next(ln for ln in fsrc.splitlines() if "ops.sum(" in ln)
    assert re.search(r"= ops\.sum\(t\d+\)  #", sum_line), sum_line  # dim, keepdim, dtype left out


def test_programs_with_omitted_defaults_compute_the_same():
    cf, model, x, grads = _mlp_sources()
    out = cf(x)
    model.zero_grad()
    out.backward()
    eager_model_out = model(x)
    ref = (eager_model_out * eager_model_out).sum().abs().max() / 8
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-6)


def test_a_value_named_like_an_op_makes_the_op_qualified():
    def f(mul, exp):  # parameters named like ops
        return (mul * exp).exp()
    cf = tg.compile(f)
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    out = cf(a, tg.tensor([0.5, 0.25]))
    src = cf.source("forward")
    _check_program(src, max_lines=10)
    assert "def forward(mul, exp):" in src and "ops.mul(mul, exp)" in src and "ops.exp(" in src
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.exp([0.5, 0.5]) * [0.5, 0.25], rtol=1e-6)
