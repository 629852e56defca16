"""Guards and the cache: what makes a call reuse its compiled program (a hit) and what makes
it trace again (a miss, with a reason that names what changed)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler import guards


def _stats(f):
    s = f.stats
    return s["calls"], s["traces"], s["hits"], s["misses"]


def test_same_shape_hits_new_shape_retraces_naming_the_argument():
    f = tg.compile(lambda x, y: x * y + 1)
    x, y = tg.ones(3), tg.ones(3)
    f(x, y)
    out = f(tg.full((3,), 2.0), y)  # new values, same guards: a hit on the same program
    assert repr(out) == "tensor([3., 3., 3.])"
    assert _stats(f) == (2, 1, 1, 1)
    out = f(x, tg.ones(2, 3))  # argument 1 changes shape
    assert tuple(out.shape) == (2, 3)
    assert _stats(f) == (3, 2, 1, 2)
    reason = f.stats["miss_reasons"][-1]
    assert reason.startswith("argument 1:") and "float32[3]" in reason and "float32[2, 3]" in reason
    f(x, y)  # the first program is still cached
    assert _stats(f) == (4, 2, 2, 2)
    assert f.stats["miss_reasons"] == ["first call", reason]


def test_dtype_is_guarded():
    f = tg.compile(lambda x: x * 2)
    f(tg.ones(2))
    out = f(tg.ones(2, dtype=tg.float64))
    assert out.dtype is tg.float64
    assert "float64" in f.stats["miss_reasons"][-1] and f.stats["traces"] == 2


def test_requires_grad_flip_retraces():
    f = tg.compile(lambda x: x.sin())
    x = tg.ones(2)
    assert not f(x).requires_grad
    x.requires_grad_()
    out = f(x)
    assert out.requires_grad
    assert "requires_grad=False" in f.stats["miss_reasons"][-1]
    assert "requires_grad=True" in f.stats["miss_reasons"][-1]
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(1.0), rtol=1e-6)


def test_grad_mode_flip_retraces_and_each_mode_hits():
    f = tg.compile(lambda x: x.sin())
    x = tg.ones(2, requires_grad=True)
    assert f(x).requires_grad
    with tg.no_grad():
        assert not f(x).requires_grad
    assert f.stats["miss_reasons"][-1] == "grad mode changed (is_grad_enabled=False)"
    assert f(x).requires_grad
    with tg.no_grad():
        f(x)
    assert _stats(f) == (4, 2, 2, 2)


def test_closure_tensor_updated_in_place_is_read_at_each_call():
    w = tg.tensor([1., 1.])
    f = tg.compile(lambda x: x * w)
    x = tg.tensor([1., 2.])
    assert repr(f(x)) == "tensor([1., 2.])"
    with tg.no_grad():
        w.mul_(3)  # a captured tensor is an input of the program, not a constant
    assert repr(f(x)) == "tensor([3., 6.])"
    assert _stats(f) == (2, 1, 1, 1)


def test_captured_parameter_gets_gradients_and_new_values():
    w = tg.tensor([1., 2.], requires_grad=True)
    f = tg.compile(lambda x: (x * w).sum())
    x = tg.tensor([3., 4.])
    f(x).backward()
    assert repr(w.grad) == "tensor([3., 4.])"
    with tg.no_grad():
        w -= 0.5 * w.grad  # an optimizer step
    w.grad = None
    out = f(x)
    assert out.item() == pytest.approx(3 * -0.5 + 4 * 0.0)
    out.backward()
    assert repr(w.grad) == "tensor([3., 4.])"
    assert f.stats["traces"] == 1


def test_captured_tensor_changing_shape_retraces():
    class Box:
        pass
    box = Box()
    box.w = tg.ones(2)
    f = tg.compile(lambda x: x * box.w.sum())
    f(tg.ones(2))
    with tg.no_grad():
        box.w.data = tg.ones(3)  # same tensor object, new storage of another shape
    assert repr(f(tg.ones(2))) == "tensor([3., 3.])"
    reason = f.stats["miss_reasons"][-1]
    assert reason.startswith("captured tensor #0 changed") and "[2]" in reason and "[3]" in reason


def test_captured_tensor_requires_grad_flip_retraces():
    w = tg.ones(2)
    f = tg.compile(lambda x: x * w)
    assert not f(tg.ones(2)).requires_grad
    w.requires_grad_()
    assert f(tg.ones(2)).requires_grad
    assert "captured tensor #0 changed" in f.stats["miss_reasons"][-1]


def test_rebinding_a_captured_name_is_seen():
    cell = {"w": tg.tensor([1., 1.])}

    def f(x):
        return x * cell["w"]
    cf = tg.compile(f)
    cf(tg.ones(2))
    cell["w"] = tg.tensor([5., 5.])
    assert repr(cf(tg.ones(2))) == "tensor([5., 5.])"


def test_rebinding_a_global_or_closure_name_or_module_attribute_is_seen():
    w = tg.tensor([1., 1.])

    def f(x):
        return x * w
    cf = tg.compile(f)
    assert repr(cf(tg.ones(2))) == "tensor([1., 1.])"
    w = tg.tensor([5., 5.])  # noqa: F841  (rebinds the closure cell f reads)
    assert repr(cf(tg.ones(2))) == "tensor([5., 5.])"
    assert "`w` now refers to another tensor" in cf.stats["miss_reasons"][-1]


def test_non_tensor_arguments_are_guarded_by_value():
    f = tg.compile(lambda x, n, mode: x * n if mode == "mul" else x + n)
    x = tg.tensor([1., 2.])
    assert repr(f(x, 2, "mul")) == "tensor([2., 4.])"
    assert repr(f(x, 3, "mul")) == "tensor([3., 6.])"
    assert f.stats["miss_reasons"][-1] == "argument 1: value 2 -> value 3"
    assert repr(f(x, 3, "add")) == "tensor([4., 5.])"
    assert f.stats["miss_reasons"][-1] == "argument 2: value 'mul' -> value 'add'"
    assert repr(f(x, 2, "mul")) == "tensor([2., 4.])"
    assert _stats(f) == (4, 3, 1, 3)
    # 2 and 2.0 are equal and hash alike, but trace differently (int vs float promotion)
    out = f(tg.tensor([1, 2]), 2.0, "mul")
    assert out.dtype is tg.float32
    assert f(tg.tensor([1, 2]), 2, "mul").dtype is tg.int64


def test_kwargs_and_pytrees_of_arguments():
    f = tg.compile(lambda xs, scale=1.0: (xs["a"] + xs["b"][0]) * scale)
    a, b = tg.ones(2), tg.ones(2)
    assert repr(f({"a": a, "b": [b]}, scale=2.0)) == "tensor([4., 4.])"
    assert repr(f({"a": a, "b": [b]}, scale=2.0)) == "tensor([4., 4.])"
    assert f.stats["hits"] == 1
    f({"a": a, "b": [b, b]}, scale=2.0)
    assert f.stats["miss_reasons"][-1].startswith("argument structure changed")


def test_aliasing_between_arguments_is_guarded():
    f = tg.compile(lambda x, y: x * y)
    x = tg.tensor([1., 2.], requires_grad=True)
    y = tg.tensor([1., 2.], requires_grad=True)
    f(x, y).sum().backward()
    assert repr(x.grad) == "tensor([1., 2.])"
    x.grad = None
    f(x, x).sum().backward()  # the same tensor twice: d(x*x)/dx = 2x
    assert repr(x.grad) == "tensor([2., 4.])"
    assert f.stats["traces"] == 2 and "aliasing" in f.stats["miss_reasons"][-1]


def test_recompile_limit_warns_once_naming_the_failing_guard():
    f = tg.compile(lambda x: x * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning before the limit
        for n in range(1, guards.RECOMPILE_LIMIT + 1):
            f(tg.ones(n))
    assert f.stats["traces"] == guards.RECOMPILE_LIMIT
    n = guards.RECOMPILE_LIMIT + 1
    want = (r"recompiled 8 times; the guard that keeps failing: "
            r"argument 0: tensor float32\[8\].* -> tensor float32\[9\]")
    with pytest.warns(UserWarning, match=want) as rec:
        assert repr(f(tg.ones(n))) == repr(tg.full((n,), 2.0))
    assert rec[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        f(tg.ones(n + 1))


class _Holder:
    pass


_HELPER_W = tg.tensor([1., 2.])


def _helper(x):
    return x * _HELPER_W


@pytest.mark.parametrize("path", ["list item", "nested dict/list", "attribute", "default arg",
                                  "helper's global"])
def test_a_captured_tensor_rebound_anywhere_on_its_path_is_seen(path):
    # these paths were once unguarded: the second call silently used the old tensor
    global _HELPER_W
    box, obj = [tg.tensor([1., 2.])], _Holder()
    groups = [{"params": [tg.tensor([1., 2.])], "lr": 0.1}]
    obj.w = tg.tensor([1., 2.])

    def by_default(x, _w=[tg.tensor([1., 2.])]):
        return x * _w[0]
    fns = {"list item": lambda x: x * box[0],
           "nested dict/list": lambda x: x * groups[0]["params"][0],
           "attribute": lambda x: x * obj.w,
           "default arg": by_default,
           "helper's global": lambda x: _helper(x) + 0}
    rebind = {"list item": lambda t: box.__setitem__(0, t),
              "nested dict/list": lambda t: groups[0]["params"].__setitem__(0, t),
              "attribute": lambda t: setattr(obj, "w", t),
              "default arg": lambda t: by_default.__defaults__[0].__setitem__(0, t),
              "helper's global": lambda t: globals().__setitem__("_HELPER_W", t)}
    f = tg.compile(fns[path])
    assert f(tg.ones(2)).tolist() == [1., 2.]
    rebind[path](tg.tensor([5., 7.]))
    assert f(tg.ones(2)).tolist() == [5., 7.]
    assert "now refers to another tensor" in f.stats["miss_reasons"][-1]
    _HELPER_W = tg.tensor([1., 2.])


def test_a_tensor_made_inside_the_function_is_not_a_retrace():
    f = tg.compile(lambda x: x * tg.tensor([2., 3.]))
    for _ in range(3):
        assert f(tg.ones(2)).tolist() == [2., 3.]
    assert f.stats["misses"] == 1
