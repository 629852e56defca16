"""Grad modes: no_grad, enable_grad, set_grad_enabled, inference_mode -- as context managers,
decorators and (set_grad_enabled) a plain call; thread-local, like PyTorch's."""
from __future__ import annotations

import threading

import pytest

import tracegrad as torch


def _x():
    return torch.tensor([1.0, 2.0], requires_grad=True)


def test_no_grad_context():
    x = _x()
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad


@pytest.mark.parametrize("form", ["called", "bare"])
def test_no_grad_decorator(form):
    def double(x):
        """Doubles."""
        return x * 2
    deco = torch.no_grad()(double) if form == "called" else torch.no_grad(double)
    y = deco(_x())
    assert not y.requires_grad and torch.is_grad_enabled()
    assert deco.__name__ == "double" and deco.__doc__ == "Doubles."


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError
    assert torch.is_grad_enabled()


def test_no_grad_on_a_generator():
    @torch.no_grad()
    def gen(x):
        for _ in range(2):
            yield x * 2, torch.is_grad_enabled()
    outs = list(gen(_x()))
    assert [(y.requires_grad, mode) for y, mode in outs] == [(False, False)] * 2
    assert torch.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = _x()
    with torch.no_grad():
        with torch.enable_grad():
            y = x * 2
        z = x * 2

        @torch.enable_grad()
        def f(t):
            return t * 2
        w = f(x)
    assert y.requires_grad and not z.requires_grad and w.requires_grad


def test_set_grad_enabled_as_a_plain_call():
    x = _x()
    torch.set_grad_enabled(False)
    assert not torch.is_grad_enabled() and not (x * 2).requires_grad
    torch.set_grad_enabled(True)
    assert (x * 2).requires_grad


@pytest.mark.parametrize("flag", [False, True])
def test_set_grad_enabled_as_a_context(flag):
    x = _x()
    with torch.no_grad():
        with torch.set_grad_enabled(flag):
            y = x * 2
        assert not torch.is_grad_enabled()  # restored to the enclosing mode
    assert y.requires_grad is flag
    assert torch.is_grad_enabled()


def test_set_grad_enabled_as_a_decorator():
    @torch.set_grad_enabled(False)
    def f(t):
        return t * 2
    assert torch.is_grad_enabled()  # decorating does not switch the mode
    assert not f(_x()).requires_grad
    assert torch.is_grad_enabled()


def test_set_grad_enabled_needs_a_bool():
    with pytest.raises(TypeError, match="set_grad_enabled\\(\\): argument 'mode' must be bool"):
        torch.set_grad_enabled("no")
    assert torch.is_grad_enabled()


def test_inference_mode():
    x = _x()
    with torch.inference_mode():
        assert torch.autograd.grad_mode.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()
        y = x * 2
    assert not y.requires_grad
    assert not torch.autograd.grad_mode.is_inference_mode_enabled()

    @torch.inference_mode()
    def f(t):
        return t * 2

    @torch.inference_mode
    def g(t):
        return t * 2
    assert not f(x).requires_grad and not g(x).requires_grad
    with torch.inference_mode(False):  # a no-op, as in PyTorch
        assert (x * 2).requires_grad


def test_backward_runs_inside_no_grad():
    x = _x()
    y = (x * x).sum()
    with torch.no_grad():
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_create_graph_records_even_inside_no_grad():
    x = _x()
    y = (x * x * x).sum()
    with torch.no_grad():
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        assert not torch.is_grad_enabled()  # the engine restores the caller's mode
    assert g.requires_grad
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert gg.tolist() == [6.0, 12.0]


def test_grad_mode_is_thread_local():
    x = _x()
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with torch.no_grad():
            entered.set()
            checked.wait(5)
            seen["worker"] = (x * 2).requires_grad

    t = threading.Thread(target=worker)
    t.start()
    assert entered.wait(5)
    seen["main"] = (x * 2).requires_grad  # while the worker is inside no_grad
    checked.set()
    t.join(5)
    assert seen == {"main": True, "worker": False}


def test_a_new_thread_starts_with_grad_enabled():
    x = _x()
    seen = []
    with torch.no_grad():
        t = threading.Thread(target=lambda: seen.append((x * 2).requires_grad))
        t.start()
        t.join(5)
        assert not (x * 2).requires_grad
    assert seen == [True]


def test_same_modes_as_pytorch(torch_ref):
    def modes(t):
        x = t.tensor([1.0], requires_grad=True)
        out = []
        with t.no_grad():
            out.append((x * 2).requires_grad)
            with t.enable_grad():
                out.append((x * 2).requires_grad)
        with t.set_grad_enabled(False):
            out.append((x * 2).requires_grad)
        with t.inference_mode():
            out.append((x * 2).requires_grad)
        t.set_grad_enabled(False)
        out.append(t.is_grad_enabled())
        t.set_grad_enabled(True)
        out.append(repr(t.set_grad_enabled(True)).split(".", 1)[1])
        return out
    assert modes(torch) == modes(torch_ref)
