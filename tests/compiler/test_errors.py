"""Errors of compiled functions: graph breaks name the user's file and line, the eager
fallback warns once and stays correct, unsupported node hooks say what to do instead; and
each error leaves the compiled function usable."""
from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler import GraphBreak

HERE = os.path.basename(__file__)


def branchy(x):
    y = x * 2
    if y.sum() > 0:
        return y.sin()
    return y.cos()


def uses_item(x):
    return x * x.sum().item()


def masked(x):
    return x[x > 0].sum()


def _line(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + [ln.strip() for ln in lines].index(text)


@pytest.mark.parametrize("fn,text,what", [
    (branchy, "if y.sum() > 0:", "a Python `if`/`bool()` on a tensor"),
    (uses_item, "return x * x.sum().item()", "Tensor.item()"),
    (masked, "return x[x > 0].sum()", "boolean-mask indexing"),
])
def test_graph_break_fullgraph_names_file_and_line(fn, text, what):
    cf = tg.compile(fn, fullgraph=True)
    x = tg.tensor([1., -2., 3.], requires_grad=True)
    with pytest.raises(GraphBreak) as info:
        cf(x)
    msg = str(info.value)
    assert f"(at {HERE}:{_line(fn, text)}: {text})" in msg
    assert what in msg and "fullgraph=False" in msg
    assert info.value.loc == (HERE, _line(fn, text), text)
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(GraphBreak):  # still raises next time, nothing half-cached
        cf(x)
    assert cf.stats["graph_breaks"] == 2 and cf.stats["hits"] == 0


def test_graph_break_fallback_warns_once_and_is_correct():
    cf = tg.compile(branchy)
    for sign in (1.0, -1.0, 1.0):  # both branches, eagerly
        x = tg.tensor([sign, 2 * sign], dtype=tg.float64, requires_grad=True)
        if sign == 1.0 and cf.stats["calls"] == 0:
            with pytest.warns(UserWarning, match=rf"{HERE}:{_line(branchy, 'if y.sum() > 0:')}.*"
                                                 r"Running branchy eagerly") as rec:
                out = cf(x)
            assert rec[0].filename == __file__  # the warning points at this call
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = cf(x)
        ref = branchy(x)
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
        (g,) = tg.autograd.grad(out.sum(), x)
        (gr,) = tg.autograd.grad(ref.sum(), x)
        np.testing.assert_array_equal(g.numpy(), gr.numpy())
    # values are not guarded: one break, then the cached "run eagerly" entry serves both signs
    assert cf.stats["graph_breaks"] == 1 and cf.stats["hits"] == 2
    with pytest.raises(RuntimeError, match="ran eagerly after a graph break"):
        cf.source()


def test_graph_break_inside_a_nested_helper_names_the_helper_line():
    def helper(t):
        return t.tolist()

    def f(x):
        return tg.tensor(helper(x)) * x
    with pytest.raises(GraphBreak, match=rf"at {HERE}:{_line(helper, 'return t.tolist()')}: "):
        tg.compile(f, fullgraph=True)(tg.ones(2))


def test_node_hooks_inside_compiled_raise_clear_error():
    def f(x):
        y = x * 2
        y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: None)
        return y

    def g(x):
        y = x * 2
        y.grad_fn.register_prehook(lambda grad_outputs: None)
        return y
    x = tg.tensor([1., 2.], requires_grad=True)
    for fn in (f, g):
        cf = tg.compile(fn)
        with pytest.raises(RuntimeError, match=r"MulBackward0\.register_hook/register_prehook "
                                               r"inside a compiled function is not supported: "
                                               r"use Tensor\.register_hook"):
            cf(x)
    # node hooks outside the compiled function still work, and the function is usable
    ok = tg.compile(lambda x: x * 2)
    seen = []
    y = ok(x)
    y.grad_fn.register_hook(lambda gi, go: seen.append((gi, go)))
    y.sum().backward()
    assert len(seen) == 1 and repr(x.grad) == "tensor([2., 2.])"


def test_errors_inside_the_user_function_propagate_unchanged():
    def f(x, y):
        return x @ y
    cf = tg.compile(f)
    with pytest.raises(RuntimeError) as compiled_err:
        cf(tg.ones(2, 3), tg.ones(2, 3))
    with pytest.raises(RuntimeError) as eager_err:
        f(tg.ones(2, 3), tg.ones(2, 3))
    assert str(compiled_err.value) == str(eager_err.value)
    assert repr(cf(tg.ones(2, 3), tg.ones(3, 1))) == "tensor([[3.],\n        [3.]])"


def test_bad_compile_arguments():
    with pytest.raises(ValueError, match="unknown backend 'tvm'"):
        tg.compile(lambda x: x, backend="tvm")
    with pytest.warns(UserWarning, match="dynamic=True"):
        tg.compile(lambda x: x, dynamic=True)
    f = lambda x: x  # noqa: E731
    assert tg.compile(f, disable=True) is f
    deco = tg.compile(fullgraph=True)
    cf = deco(branchy)
    assert cf.fullgraph and cf.__name__ == "branchy"
