"""Regression tests for disagreement classes the differential fuzzer found (docs/fuzzing.md):
each compares with PyTorch and also pins an explicit expected value."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg


def _f64(v, rg=False):
    return tg.tensor(v, dtype=tg.float64, requires_grad=rg)


# ------------------------------------------------------------------ clamp with tensor bounds
# x == bound: the input gets the whole gradient (PyTorch's clamp_backward), not half
_X, _LO, _HI = [0.0, 0.5, 2.0, -1.0], [0.0, 1.0, 0.0, -1.0], [0.0, 1.0, 1.0, -1.0]
_G = [1.0, 2.0, 3.0, 4.0]
_CASES = {  # kwargs -> (value, x.grad, min.grad, max.grad)
    "min": ([0.0, 1.0, 2.0, -1.0], [1, 0, 3, 4], [0, 2, 0, 0], None),
    "max": ([0.0, 0.5, 1.0, -1.0], [1, 2, 0, 4], None, [0, 0, 3, 0]),
    "both": ([0.0, 1.0, 1.0, -1.0], [1, 0, 0, 4], [0, 0, 0, 0], [0, 0, 3, 0]),
}


def _clamp_run(lib, which, inplace):
    x = lib.tensor(_X, dtype=lib.float64, requires_grad=True)
    lo = lib.tensor(_LO, dtype=lib.float64, requires_grad=True)
    hi = lib.tensor(_HI, dtype=lib.float64, requires_grad=True)
    kw = {"min": {"min": lo}, "max": {"max": hi}, "both": {"min": lo, "max": hi}}[which]
    y = (x * 1).clamp_(**kw) if inplace else x.clamp(**kw)
    assert y.grad_fn.name() == "ClampBackward0"
    y.backward(lib.tensor(_G, dtype=lib.float64))
    grads = [None if t.grad is None else t.grad.numpy().tolist() for t in (x, lo, hi)]
    return [y.detach().numpy().tolist()] + grads


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("which", sorted(_CASES))
def test_clamp_with_tensor_bounds_at_the_bounds(which, inplace):
    got = _clamp_run(tg, which, inplace)
    assert got == [None if v is None else [float(e) for e in v] for v in _CASES[which]]


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("which", sorted(_CASES))
def test_clamp_with_tensor_bounds_matches_torch(which, inplace):
    torch = pytest.importorskip("torch")
    assert _clamp_run(tg, which, inplace) == _clamp_run(torch, which, inplace)


def test_clamp_with_min_above_max_gives_the_gradient_to_max():
    x, lo, hi = _f64([0.5], True), _f64([1.0], True), _f64([0.0], True)
    y = tg.clamp(x, lo, hi)
    y.backward()
    assert (y.item(), x.grad.item(), lo.grad.item(), hi.grad.item()) == (0.0, 0.0, 0.0, 1.0)


def test_clamp_with_a_broadcast_tensor_bound_reduces_its_gradient():
    x = _f64([[0.0, 1.0], [2.0, 3.0]], True)
    b = _f64(1.0, True)
    x.clamp(max=b).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0], [0.0, 0.0]])
    assert b.grad.item() == 2.0


def test_clamp_mixing_a_tensor_and_a_number_bound_is_a_type_error():
    x = _f64([1.0, 2.0])
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        x.clamp(min=0.5, max=_f64(1.0))
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        x.clamp_(min=_f64(0.5), max=2.0)
    assert x.tolist() == [1.0, 2.0] and x._version == 0


# ------------------------------------------------------------------ sub with alpha
def _sub_alpha_run(lib, form):
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
    v = {"method": lambda: x.sub(y, alpha=2), "function": lambda: lib.sub(x, y, alpha=2),
         "subtract": lambda: lib.subtract(x, y, alpha=2),
         "inplace": lambda: (x * 1).sub_(y, alpha=2)}[form]()
    v.backward(lib.tensor([1.0, 3.0], dtype=lib.float64))
    return v.grad_fn.name(), v.tolist(), x.grad.tolist(), y.grad.tolist()


@pytest.mark.parametrize("form", ["method", "function", "subtract", "inplace"])
def test_sub_with_alpha(form):
    assert _sub_alpha_run(tg, form) == ("SubBackward0", [0.0, 4.0], [1.0, 3.0], [-2.0, -6.0])


@pytest.mark.parametrize("form", ["method", "function", "subtract", "inplace"])
def test_sub_with_alpha_matches_torch(form):
    torch = pytest.importorskip("torch")
    assert _sub_alpha_run(tg, form) == _sub_alpha_run(torch, form)


def test_sub_of_integers_with_a_float_alpha_raises():
    with pytest.raises(RuntimeError, match="alpha must not be a floating point number"):
        tg.sub(tg.tensor([1]), tg.tensor([2]), alpha=1.5)


# ------------------------------------------------------------------ 0-d tensors as one element
@pytest.mark.parametrize("value, n", [(1.5, 1), (0.0, 0)])
def test_nonzero_of_a_0d_tensor(value, n):
    t = tg.tensor(value)
    assert tuple(t.nonzero().shape) == (n, 0) and t.nonzero().dtype is tg.int64
    (idx,) = t.nonzero(as_tuple=True)
    assert idx.tolist() == [0] * n and idx.dtype is tg.int64
    torch = pytest.importorskip("torch")
    assert tuple(torch.tensor(value).nonzero().shape) == (n, 0)
    assert torch.tensor(value).nonzero(as_tuple=True)[0].tolist() == idx.tolist()


@pytest.mark.parametrize("shape", [(), (2, 3)])
def test_sum_to_size_of_nothing_is_a_full_sum(shape):
    x = tg.ones(shape, dtype=tg.float64, requires_grad=True)
    y = x.sum_to_size(())
    assert y is not x and not y.is_leaf and y.grad_fn.name() == "SumBackward0"
    y.backward()
    assert y.item() == float(np.prod(shape)) and x.grad.tolist() == np.ones(shape).tolist()
    torch = pytest.importorskip("torch")
    assert torch.ones(shape, requires_grad=True).sum_to_size(()).grad_fn.name() == "SumBackward0"


# ------------------------------------------------------------------ grad_fn class names
@pytest.mark.parametrize("call, name", [(lambda x: x.sum(0), "SumBackward1"),
                                        (lambda x: x.sum(), "SumBackward0"),
                                        (lambda x: x.amax(), "AmaxBackward0")])
def test_grad_fn_class_is_named_after_the_node(call, name):
    x = tg.tensor([[1.0, 2.0]], dtype=tg.float64, requires_grad=True)
    assert type(call(x).grad_fn).__name__ == name == call(x).grad_fn.name()
    torch = pytest.importorskip("torch")
    assert type(call(torch.tensor([[1.0, 2.0]], requires_grad=True)).grad_fn).__name__ == name


# ------------------------------------------------------------------ create_graph through kinks
def _relu_second_order(lib):
    x = lib.tensor([0.5, -1.0, 0.0, float("nan")], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
    (g,) = lib.autograd.grad([lib.relu(x)], [x], grad_outputs=[w], create_graph=True)
    gx, gw = lib.autograd.grad(g.sum(), [x, w])
    return g.tolist(), g.requires_grad, type(g.grad_fn).__name__, gx.tolist(), gw.tolist()


def test_relu_gradient_under_create_graph_has_history():
    g, rg, name, gx, gw = _relu_second_order(tg)
    assert (g, rg, name) == ([1.0, 0.0, 0.0, 4.0], True, "ThresholdBackwardBackward0")
    assert gx == [0.0] * 4 and gw == [1.0, 0.0, 0.0, 1.0]  # NaN > 0 keeps the gradient


def test_relu_gradient_under_create_graph_matches_torch():
    torch = pytest.importorskip("torch")
    assert _relu_second_order(tg) == _relu_second_order(torch)


@pytest.mark.parametrize("name", ["abs", "clamp", "maximum", "amax"])
def test_kink_gradients_under_create_graph_have_torch_history(name):
    torch = pytest.importorskip("torch")
    fns = {"abs": lambda lib, x: lib.abs(x), "clamp": lambda lib, x: x.clamp(-0.5, 0.5),
           "maximum": lambda lib, x: lib.maximum(x, x * 0), "amax": lambda lib, x: x.amax()}

    def run(lib):
        x = lib.tensor([0.5, -1.0, 0.0], dtype=lib.float64, requires_grad=True)
        v = fns[name](lib, x)
        (g,) = lib.autograd.grad([v], [x], grad_outputs=[lib.ones_like(v)], create_graph=True)
        return g.tolist(), g.requires_grad, g.grad_fn is None
    assert run(tg) == run(torch)


# ------------------------------------------------------------------ narrow's argument checks
_NARROW = [((0, 1, 5), RuntimeError, r"start \(1\) \+ length \(5\) exceeds dimension size \(4\)\."),
           ((0, 5, 0), IndexError, r"start out of range \(expected to be in range of \[-4, 4\], but got 5\)"),
           ((0, -5, 1), IndexError, r"start out of range .* but got -5\)"),
           ((0, 1, -1), RuntimeError, r"narrow\(\): length must be non-negative\.")]


@pytest.mark.parametrize("args, exc, msg", _NARROW)
def test_narrow_out_of_range_raises_as_torch(args, exc, msg):
    # a slice would clamp these silently (x.narrow(0, 1, 5) gave [1, 2, 3])
    with pytest.raises(exc, match=msg):
        tg.arange(4.0).narrow(*args)
    torch = pytest.importorskip("torch")
    with pytest.raises(exc, match=msg):
        torch.arange(4.0).narrow(*args)


def test_narrow_of_a_0d_tensor_raises_and_in_range_narrows_agree():
    with pytest.raises(RuntimeError, match=r"narrow\(\) cannot be applied to a 0-dim tensor\."):
        tg.tensor(2.0).narrow(0, 1, 3)
    x = tg.arange(4.0)
    assert x.narrow(0, -1, 1).tolist() == [3.0] and x.narrow(0, 4, 0).tolist() == []
    assert x.narrow(-1, -2, 2).tolist() == [2.0, 3.0]


@pytest.mark.parametrize("pos", [0, 1])
def test_cat_of_a_0d_tensor_raises_as_torch(pos):
    msg = rf"zero-dimensional tensor \(at position {pos}\) cannot be concatenated"
    parts = [tg.tensor([1.0]), tg.tensor([2.0])]
    parts[pos] = tg.tensor(3.0)
    with pytest.raises(RuntimeError, match=msg):
        tg.cat(parts)
    torch = pytest.importorskip("torch")
    tparts = [torch.tensor([1.0]), torch.tensor([2.0])]
    tparts[pos] = torch.tensor(3.0)
    with pytest.raises(RuntimeError, match=msg):
        torch.cat(tparts)
