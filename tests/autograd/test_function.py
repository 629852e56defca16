"""``tracegrad.autograd.Function``: ctx API, output wrapping rules, saved tensors, errors,
double backward through a user backward; PyTorch as the oracle where installed."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.autograd import Function, gradcheck, gradgradcheck, once_differentiable


def _np(t):
    return np.asarray(t.detach()._data.value)


# ----------------------------------------------------------------------------- functions used below

class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = x.exp()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g * out


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return 3 * x ** 2 * g


class Scale(Function):
    """A non-tensor argument, stored on ctx."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


class SetupScale(Function):
    """The ``setup_context`` form, with a default argument."""

    @staticmethod
    def forward(x, k=2.0):
        return x * k

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, k = inputs
        ctx.k = k
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


# ----------------------------------------------------------------------------- basics

def test_forward_backward_and_grad_fn_named_after_the_class():
    x = tg.tensor([1., 2.], requires_grad=True)
    y = Exp.apply(x)
    assert type(y.grad_fn).__name__ == "ExpBackward" and y.grad_fn.name() == "ExpBackward"
    assert repr(y) == "tensor([2.7183, 7.3891], grad_fn=<ExpBackward>)"
    assert re.fullmatch(r"<ExpBackward object at 0x[0-9a-f]+>", repr(y.grad_fn))
    assert y.grad_fn.next_functions == ((x._accumulator(), 0),)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.exp([1., 2.]), rtol=1e-6)


def test_ctx_is_the_grad_fn_and_keeps_attributes():
    x = tg.tensor([1., 2.], requires_grad=True)
    y = Scale.apply(x, 3.0)
    assert y.grad_fn.k == 3.0
    assert y.grad_fn.needs_input_grad == (True, False)
    assert y.grad_fn.next_functions == ((x._accumulator(), 0), (None, 0))
    y.sum().backward()
    assert x.grad.tolist() == [3., 3.]


def test_needs_input_grad_per_argument():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, c):
            seen["needs"] = ctx.needs_input_grad
            seen["grad_mode"] = tg.is_grad_enabled()
            return a * b

        @staticmethod
        def backward(ctx, g):
            seen["backward_needs"] = ctx.needs_input_grad
            return g, None, None

    a = tg.tensor([1.], requires_grad=True)
    Probe.apply(a, tg.tensor([2.]), "not a tensor").sum().backward()
    assert seen == {"needs": (True, False, False), "grad_mode": False,
                    "backward_needs": (True, False, False)}


def test_forward_records_nothing():
    inner = {}

    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            h = x * 2
            inner["h"] = h
            return h + 0

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    x = tg.tensor([1.], requires_grad=True)
    y = Twice.apply(x)
    assert inner["h"].grad_fn is None and not inner["h"].requires_grad
    assert y.grad_fn.name() == "TwiceBackward" and y.grad_fn.next_functions[0][0] is x._accumulator()


def test_apply_without_grad_mode_or_grad_inputs_records_nothing():
    x = tg.tensor([1., 2.], requires_grad=True)
    with tg.no_grad():
        y = Exp.apply(x)
    assert y.grad_fn is None and not y.requires_grad
    z = Exp.apply(tg.tensor([1., 2.]))
    assert z.grad_fn is None and not z.requires_grad


def test_setup_context_form_binds_defaults():
    x = tg.tensor([1., 2.], requires_grad=True)
    y = SetupScale.apply(x)
    assert y.tolist() == [2., 4.] and y.grad_fn.name() == "SetupScaleBackward"
    saved, = y.grad_fn.saved_tensors
    assert saved.tolist() == [2., 4.]
    y.sum().backward()
    assert x.grad.tolist() == [2., 2.]
    x.grad = None
    SetupScale.apply(x, k=5.0).sum().backward()
    assert x.grad.tolist() == [5., 5.]


def test_keyword_arguments_reach_forward():
    class KW(Function):
        @staticmethod
        def forward(ctx, x, k=2):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, None

    x = tg.tensor([1.], requires_grad=True)
    assert KW.apply(x, k=3).tolist() == [3.]
    assert KW.apply(x).tolist() == [2.]


def test_multiple_outputs_and_non_tensor_outputs():
    got = {}

    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1, x * 2, "label"

        @staticmethod
        def backward(ctx, g1, g2, g3):
            got["g"] = (g1.tolist(), g2.tolist(), g3)
            return g1 + 2 * g2

    x = tg.tensor([1., 2.], requires_grad=True)
    a, b, label = Split.apply(x)
    assert label == "label"
    assert a.grad_fn is b.grad_fn and (a.output_nr, b.output_nr) == (0, 1)
    assert a.grad_fn.num_outputs == 3
    b.sum().backward()  # a's gradient is materialized as zeros, the str's is None
    assert got["g"] == ([0., 0.], [1., 1.], None)
    assert x.grad.tolist() == [2., 2.]


def test_set_materialize_grads_false_passes_none():
    got = {}

    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 1, x * 2

        @staticmethod
        def backward(ctx, g1, g2):
            got["g1"] = g1
            return None if g1 is None else g1

    x = tg.tensor([1., 2.], requires_grad=True)
    Two.apply(x)[1].sum().backward()
    assert got["g1"] is None and x.grad is None


def test_none_gradient_for_an_input():
    class First(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, None

    x = tg.tensor([1.], requires_grad=True)
    y = tg.tensor([1.], requires_grad=True)
    First.apply(x, y).sum().backward()
    assert x.grad.tolist() == [1.] and y.grad is None


# ----------------------------------------------------------------------------- saved tensors

def test_saved_tensors_are_version_checked():
    b = tg.tensor([1., 2.], requires_grad=True) * 1
    y = Cube.apply(b)
    b.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*\[\w+\.FloatTensor "
                                           r"\[2\]\], which is output 0 of MulBackward0, is at "
                                           r"version 1; expected version 0"):
        y.sum().backward()
    fresh = Cube.apply(b)  # the graph still works with an unmodified saved tensor
    fresh.sum().backward(retain_graph=True)


def test_saved_tensors_freed_after_backward():
    x = tg.tensor([1., 2.], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.grad_fn.saved_tensors
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.sum().backward()
    y2 = Exp.apply(x)
    y2.sum().backward(retain_graph=True)
    y2.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 3 * np.exp([1., 2.]), rtol=1e-6)


def test_save_for_backward_accepts_tensors_and_none_only():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

    x = tg.tensor([1.], requires_grad=True)
    with pytest.raises(TypeError, match="save_for_backward can only save variables, but argument 1 "
                                        "is of type int"):
        Bad.apply(x)

    class WithNone(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(None, x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            none, x = ctx.saved_tensors
            assert none is None
            return 2 * g

    WithNone.apply(x).sum().backward()
    assert x.grad.tolist() == [2.]


def test_saved_output_carries_history_under_create_graph():
    x = tg.tensor([0.5, 1.0], dtype=tg.float64, requires_grad=True)
    g, = tg.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    g2, = tg.autograd.grad(g.sum(), x)  # d/dx exp(x) through the saved output
    np.testing.assert_allclose(_np(g2), np.exp([0.5, 1.0]), rtol=1e-12)


# ----------------------------------------------------------------------------- outputs that are inputs

def test_returning_an_input_gives_an_alias_with_history():
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return 3 * g

    x = tg.tensor([1., 2.], requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and x.is_leaf and x.grad_fn is None
    assert y.grad_fn.name() == "IdentBackward" and y._data is x._data
    y.sum().backward()
    assert x.grad.tolist() == [3., 3.]


class Double_(Function):
    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return 2 * g


def test_mark_dirty_rebases_history_of_the_modified_input():
    a = tg.tensor([1., 2.], requires_grad=True)
    b = a * 1
    v = b._version
    out = Double_.apply(b)
    assert out is b and b.grad_fn.name() == "Double_Backward"
    assert b._version == v + 2  # the in-place op, then mark_dirty (as PyTorch)
    assert b.tolist() == [2., 4.]
    out.sum().backward()
    assert a.grad.tolist() == [2., 2.]


def test_mark_dirty_on_a_leaf_that_requires_grad_raises():
    a = tg.tensor([1., 2.], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad has been used in an "
                                           "in-place operation."):
        Double_.apply(a)
    Double_.apply(a * 1).sum().backward()  # still usable
    assert a.grad.tolist() == [2., 2.]


def test_dirty_tensor_must_be_returned():
    class NotReturned(Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="Some elements marked as dirty during the forward method "
                                           "were not returned as output"):
        NotReturned.apply(tg.tensor([1.], requires_grad=True) * 1)


def test_mark_non_differentiable_outputs():
    got = {}

    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            idx = tg.argmax(x).reshape(1)
            top = x.amax().reshape(1)
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(x, idx)
            return top, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            got["g_idx"] = g_idx.tolist()
            x, idx = ctx.saved_tensors
            return (tg.arange(x.shape[0]) == idx).to(g.dtype) * g

    x = tg.tensor([3., 5., 1.], requires_grad=True)
    top, idx = SortWithIndex.apply(x)
    assert top.requires_grad and not idx.requires_grad and idx.grad_fn is None
    top.sum().backward()
    assert got["g_idx"] == [0] and x.grad.tolist() == [0., 1., 0.]


def test_float_output_marked_non_differentiable_does_not_require_grad():
    class Half(Function):
        @staticmethod
        def forward(ctx, x):
            a, b = x * 1, x * 2
            ctx.mark_non_differentiable(b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            assert gb.tolist() == [0.]  # materialized
            return ga

    x = tg.tensor([1.], requires_grad=True)
    a, b = Half.apply(x)
    assert a.requires_grad and not b.requires_grad
    a.sum().backward()
    assert x.grad.tolist() == [1.]


# ----------------------------------------------------------------------------- wrong use

class _Returns(Function):
    """backward returns whatever ctx.ret(g) gives."""

    @staticmethod
    def forward(ctx, x, y, fn):
        ctx.fn = fn
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return ctx.fn(g)


def _run_returns(fn, y=None):
    x = tg.tensor([1., 2.], requires_grad=True)
    out = _Returns.apply(x, y if y is not None else tg.tensor([1., 1.]), fn)
    out.sum().backward()
    return x


@pytest.mark.parametrize("fn,msg", [
    (lambda g: g, "function _ReturnsBackward returned an incorrect number of gradients "
                  "(expected 3, got 1)"),
    (lambda g: (g, None, None, g), "function _ReturnsBackward returned an incorrect number of "
                                   "gradients (expected 3, got 4)"),
    (lambda g: (g, None, g), "function _ReturnsBackward returned a gradient different than None at "
                             "position 3, but the corresponding forward input was not a Variable"),
    (lambda g: (tg.ones(3), None, None), "Function _ReturnsBackward returned an invalid gradient at "
                                         "index 0 - got [3] but expected shape compatible with [2]"),
    (lambda g: (tg.ones(()), None, None), "Function _ReturnsBackward returned an invalid gradient at "
                                          "index 0 - got [] but expected shape compatible with [2]"),
    (lambda g: (1.0, None, None), "expected Variable or None (got float)"),
])
def test_wrong_gradients_raise_pytorch_errors(fn, msg):
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        _run_returns(fn)
    assert _run_returns(lambda g: (2 * g, None, None)).grad.tolist() == [2., 2.]  # still works


def test_extra_none_gradients_are_dropped():
    x = _run_returns(lambda g: (g, None, None, None, None))
    assert x.grad.tolist() == [1., 1.]


def test_broadcast_gradient_is_summed_and_cast():
    x = _run_returns(lambda g: (tg.ones(3, 2, dtype=tg.float64), None, None))
    assert x.grad.tolist() == [3., 3.] and x.grad.dtype is tg.float32


def test_gradient_for_an_input_that_does_not_require_grad_is_ignored():
    y = tg.tensor([1., 1.])
    x = _run_returns(lambda g: (g, tg.ones(5), None), y=y)
    assert x.grad.tolist() == [1., 1.] and y.grad is None


def test_both_backward_and_vjp_is_an_error():
    class Both(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g

        @staticmethod
        def vjp(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="Implementing both 'backward' and 'vjp'"):
        Both.apply(tg.tensor([1.], requires_grad=True)).sum().backward()


def test_vjp_may_stand_for_backward():
    class V(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def vjp(ctx, g):
            return 5 * g

    x = tg.tensor([1.], requires_grad=True)
    V.apply(x).sum().backward()
    assert x.grad.tolist() == [5.]


def test_legacy_instance_call_raises():
    with pytest.warns(DeprecationWarning, match="should not be instantiated"):
        f = Exp()
    with pytest.raises(RuntimeError, match="Legacy autograd function with non-static forward method"):
        f(tg.tensor([1.], requires_grad=True))


def test_forward_not_implemented():
    class Empty(Function):
        pass

    with pytest.raises(NotImplementedError, match="You must implement the forward function"):
        Empty.apply(tg.tensor([1.]))


# ----------------------------------------------------------------------------- higher order

def test_backward_written_in_tracegrad_ops_is_differentiable():
    x = tg.tensor([1., 2.], dtype=tg.float64, requires_grad=True)
    g, = tg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    g2, = tg.autograd.grad(g.sum(), x)
    assert g2.tolist() == [6., 12.]
    assert gradcheck(Cube.apply, (x,)) and gradgradcheck(Cube.apply, (x,))


def test_once_differentiable_refuses_double_backward():
    class Sq(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            assert not tg.is_grad_enabled()
            x, = ctx.saved_tensors
            return 2 * x * g

    x = tg.tensor([1., 2.], requires_grad=True)
    Sq.apply(x).sum().backward()
    assert x.grad.tolist() == [2., 4.]
    g, = tg.autograd.grad(Sq.apply(x), x, tg.ones(2, requires_grad=True), create_graph=True)
    assert g.tolist() == [2., 4.] and g.grad_fn.name() == "Error"
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was "
                                           "marked with @once_differentiable"):
        g.sum().backward()
    # without a grad_output that requires grad, the result simply has no history (as PyTorch)
    g, = tg.autograd.grad(Sq.apply(x).sum(), x, create_graph=True)
    assert g.grad_fn is None


def test_hooks_on_a_function_node():
    x = tg.tensor([1., 2.], requires_grad=True)
    y = Scale.apply(x, 2.0)
    seen = []
    y.grad_fn.register_hook(lambda gi, go: seen.append((gi[0].tolist(), go[0].tolist())))
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert seen == [([20., 20.], [10., 10.])] and x.grad.tolist() == [20., 20.]


# ----------------------------------------------------------------------------- PyTorch as the oracle

def _define(lib):
    """The same Functions written against ``lib`` (tracegrad or torch)."""

    class LogSumExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            m = x.amax(dim=-1, keepdim=True)
            out = ((x - m).exp().sum(dim=-1, keepdim=True).log() + m).squeeze(-1)
            ctx.save_for_backward(x, out)  # the returned output: saved with its history
            return out

        @staticmethod
        def backward(ctx, g):
            x, out = ctx.saved_tensors
            return g.unsqueeze(-1) * (x - out.unsqueeze(-1)).exp()

    class MulAdd(lib.autograd.Function):
        @staticmethod
        def setup_context(ctx, inputs, output):
            x, y, alpha = inputs
            ctx.alpha = alpha
            ctx.save_for_backward(x, y)

        @staticmethod
        def forward(x, y, alpha):
            return x * y + alpha, x - y

        @staticmethod
        def backward(ctx, g1, g2):
            x, y = ctx.saved_tensors
            return g1 * y + g2, g1 * x - g2, None

    return LogSumExp, MulAdd


def test_matches_pytorch(torch_ref):
    torch = torch_ref
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    results = {}
    for lib in (tg, torch):
        LogSumExp, MulAdd = _define(lib)
        x = lib.tensor(xs, requires_grad=True)
        y = lib.tensor(ys, requires_grad=True)
        a, b = MulAdd.apply(x, y, 0.5)
        loss = (LogSumExp.apply(a) * 2).sum() + (b * b).sum()
        gx, gy = lib.autograd.grad(loss, (x, y), create_graph=True)
        hx, = lib.autograd.grad((gx * gy).sum(), x)
        results[lib.__name__] = [np.asarray(t.detach().numpy()) for t in (loss, gx, gy, hx)]
        results[lib.__name__ + "names"] = (a.grad_fn.name(), loss.grad_fn.name())
        assert lib.autograd.gradcheck(LogSumExp.apply, (x,))
        assert lib.autograd.gradgradcheck(LogSumExp.apply, (x,))
    for mine, ref in zip(results["tracegrad"], results["torch"]):
        np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-12)
    assert results["tracegradnames"][0] == results["torchnames"][0] == "MulAddBackward"


def test_traced_by_the_compiler_like_eager():
    compile_ = getattr(tg, "compile", None)
    if compile_ is None:
        pytest.skip("tracegrad.compile is not available in this checkout")

    def f(x):
        a, b = Scale.apply(x, 2.0), Cube.apply(x * 1)
        return (a * b).sum()

    results = []
    for fn in (f, compile_(f)):
        x = tg.tensor([1., 2.], dtype=tg.float64, requires_grad=True)
        out = fn(x)
        out.backward()
        results.append((out.item(), x.grad.tolist()))
    assert results[0] == results[1] == (2 * (1 + 16), [8., 64.])


def test_example_script_runs(capsys):
    import os
    import runpy
    import sys
    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "custom_function.py")
    argv = sys.argv
    sys.argv = [path, "--steps", "3"]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert "gradcheck:     True" in out and "gradgradcheck: True" in out
    assert "stable at 1000: 1000.693" in out
    assert "same gradients as tracegrad.logsumexp: True" in out
