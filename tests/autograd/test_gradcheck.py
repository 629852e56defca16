"""gradcheck / gradgradcheck: they pass correct gradients, catch wrong ones with PyTorch's
exception type and a message naming the output/input pair with both Jacobians, and agree
with PyTorch's verdicts on the same code."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.autograd import Function, gradcheck, gradgradcheck
from tracegrad.autograd.gradcheck import GradcheckError


def _rand(*shape, seed=0, rg=True):
    rng = np.random.default_rng(seed)
    return tg.tensor(rng.uniform(-1, 1, shape), dtype=tg.float64, requires_grad=rg)


def _make_functions(lib):
    """Functions written against ``lib`` (tracegrad or torch): one right, a few wrong."""

    class WrongY(lib.autograd.Function):
        """x * y whose gradient w.r.t. y is off by a factor of 2."""

        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y, 2 * g * x

    class NotTimesG(lib.autograd.Function):
        """Right for any nonzero grad_output, wrong (adds 1) when it is all zeros."""

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2 + (g * g).sum().eq(0).to(g.dtype)

    class NoHistory(lib.autograd.Function):
        """exp with a backward that uses a value saved without history: first derivatives
        are right, second derivatives miss d(exp x)/dx (the spec's Func in one line)."""

        @staticmethod
        def forward(ctx, x):
            e = x.exp()
            ctx.save_for_backward(e * 1)  # an intermediate, not the returned output
            return e

        @staticmethod
        def backward(ctx, g):
            e, = ctx.saved_tensors
            return g * e

    return WrongY, NotTimesG, NoHistory


WrongY, NotTimesG, NoHistory = _make_functions(tg)


# ----------------------------------------------------------------------------- passing

@pytest.mark.parametrize("fn,inputs", [
    (lambda x: (x * x).sum(), lambda: _rand(4)),
    (lambda x, y: x @ y, lambda: (_rand(2, 3), _rand(3, 2, seed=1))),
    (lambda x, k, y: (x * k + y.sin(), (x - y).exp()), lambda: (_rand(3), 2.5, _rand(3, seed=1))),
    (lambda x, c: x * c, lambda: (_rand(3), _rand(3, rg=False))),
    (lambda x: x.sum() > 0, lambda: _rand(3)),  # no differentiable output: numerical is zero
])
def test_correct_gradients_pass(fn, inputs):
    args = inputs()
    assert gradcheck(fn, args) is True
    assert gradcheck(fn, args, fast_mode=True) is True


def test_second_derivatives_pass():
    x, y = _rand(3), _rand(3, seed=1)
    assert gradgradcheck(lambda a, b: (a * b.exp()).sin(), (x, y))
    assert gradgradcheck(lambda a, b: (a * b.exp()).sin(), (x, y), fast_mode=True)
    go = _rand(3, seed=2)
    assert gradgradcheck(lambda a: a.tanh() * a, (x,), (go,))


def test_inputs_are_restored():
    x = _rand(3)
    before, version = x.tolist(), x._version
    gradcheck(lambda t: t.exp(), (x,))
    assert x.tolist() == before and x._version == version and x.grad is None


# ----------------------------------------------------------------------------- failing

def test_wrong_backward_is_caught_and_names_the_input():
    x, y = _rand(2), _rand(2, seed=1)
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongY.apply, (x, y))
    msg = str(info.value)
    assert msg.startswith("Jacobian mismatch for output 0 with respect to input 1,\nnumerical:")
    # both Jacobians, laid out (input numel, output numel): diag(x) and diag(2x)
    num = re.search(r"numerical:(.*)\nanalytical:", msg, re.S).group(1)
    ana = msg.split("analytical:")[1]
    xs = x.tolist()
    assert "tensor([[" in num and "tensor([[" in ana
    assert f"{xs[0]:.4f}" in num and f"{2 * xs[0]:.4f}" in ana
    assert isinstance(info.value, RuntimeError)
    assert gradcheck(WrongY.apply, (x, y), raise_exception=False) is False
    assert gradcheck(lambda a, b: a * b, (x, y))  # the check itself still works


def test_wrong_backward_is_caught_in_fast_mode_with_slow_jacobians():
    x, y = _rand(2), _rand(2, seed=1)
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongY.apply, (x, y), fast_mode=True)
    msg = str(info.value)
    assert msg.startswith("Jacobian mismatch for output 0 with respect to input 1,\nnumerical:")
    assert "we recompute numerical and analytical jacobians in slow mode" in msg
    assert "The max per-element difference (slow mode) is:" in msg
    assert gradcheck(WrongY.apply, (x, y), fast_mode=True, raise_exception=False) is False


def test_tolerances():
    class Off(Function):  # gradient 0.05 % too large
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return g * 3 * (1 + 5e-4)

    x = _rand(3)
    assert gradcheck(Off.apply, (x,))  # rtol=1e-3 by default
    assert not gradcheck(Off.apply, (x,), rtol=1e-5, raise_exception=False)
    assert gradcheck(Off.apply, (x,), rtol=0, atol=3e-3)


def test_backward_not_multiplied_by_grad_output():
    with pytest.raises(GradcheckError, match="^backward not multiplied by grad_output$"):
        gradcheck(NotTimesG.apply, (_rand(2),), check_undefined_grad=False)


def test_nondeterministic_backward():
    calls = {"n": 0}

    class Jitter(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            calls["n"] += 1
            return g * (2 + 1e-9 * calls["n"])

    x = _rand(2)
    with pytest.raises(GradcheckError, match="Backward is not reentrant.*The tolerance for "
                                             "nondeterminism was 0.0"):
        gradcheck(Jitter.apply, (x,))
    assert gradcheck(Jitter.apply, (x,), nondet_tol=1e-6)


def test_undefined_output_grads_must_be_handled():
    class NoneUnsafe(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            if g is None:
                raise RuntimeError("backward got no gradient")
            return g * 2

    x = _rand(2)
    with pytest.warns(UserWarning, match="Backwards compatibility"):
        with pytest.raises(GradcheckError, match="Expected backward function to handle undefined "
                                                 "output grads"):
            gradcheck(NoneUnsafe.apply, (x,))
    assert gradcheck(NoneUnsafe.apply, (x,), check_undefined_grad=False)


def test_output_that_ignores_the_graph():
    with pytest.raises(GradcheckError, match="Numerical gradient for function expected to be zero"):
        gradcheck(lambda t: (t * 2).detach(), (_rand(2),))


def test_input_checks():
    with pytest.warns(UserWarning, match=r"Input #0 requires gradient and is not a double "
                                         r"precision floating point"):
        gradcheck(lambda t: t * 2, (tg.ones(2, requires_grad=True),), atol=0.1)
    with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to require "
                                         "gradient, but none of them have requires_grad=True."):
        gradcheck(lambda t: t * 2, (tg.ones(2, dtype=tg.float64),))
    with pytest.raises(NotImplementedError, match="forward-mode AD"):
        gradcheck(lambda t: t * 2, (_rand(2),), check_forward_ad=True)
    with pytest.raises(AssertionError, match="at least one of check_forward_ad or "
                                             "check_backward_ad"):
        gradcheck(lambda t: t * 2, (_rand(2),), check_backward_ad=False)


def test_gradgradcheck_catches_a_backward_without_history():
    x = _rand(3)
    assert gradcheck(NoHistory.apply, (x,))
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to "
                                             "input 0,\nnumerical:"):
        gradgradcheck(NoHistory.apply, (x,))
    assert gradgradcheck(NoHistory.apply, (x,), raise_exception=False) is False
    assert gradgradcheck(lambda t: t.exp(), (x,))  # the built-in exp is twice differentiable


# ----------------------------------------------------------------------------- PyTorch as oracle

def _verdict(check, lib, fn, args, **kw):
    try:
        return check(fn, args, **kw), None
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return False, (type(e).__name__, str(e).split(",\n")[0].split("\n")[0])


def test_same_verdicts_as_pytorch(torch_ref):
    torch = torch_ref
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    verdicts = {}
    for lib in (tg, torch):
        wrong_y, not_times_g, no_history = _make_functions(lib)
        x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        y = lib.tensor(b, dtype=lib.float64, requires_grad=True)
        gc, ggc = lib.autograd.gradcheck, lib.autograd.gradgradcheck
        verdicts[lib.__name__] = [
            _verdict(gc, lib, wrong_y.apply, (x, y)),
            _verdict(gc, lib, wrong_y.apply, (x, y), fast_mode=True),
            _verdict(gc, lib, not_times_g.apply, (x,), check_undefined_grad=False),
            _verdict(gc, lib, no_history.apply, (x,)),
            _verdict(ggc, lib, no_history.apply, (x,)),
            _verdict(ggc, lib, lambda t, u: (t * u).sin(), (x, y)),
            _verdict(gc, lib, lambda t: (t * 2).detach(), (x,)),
        ]
    assert verdicts["tracegrad"] == verdicts["torch"]
    assert verdicts["torch"][0] == (False, ("GradcheckError", "Jacobian mismatch for output 0 "
                                                              "with respect to input 1"))
