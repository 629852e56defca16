"""A compiled call behaves as the eager call: hooks and retain_grad on tensors that enter a
compiled region (as arguments or captured) fire once per backward, the eager graph behind
them is walked once, and grad-mode changes inside the function give eager's outputs.

Each case is written once as ``case(T, C)`` with ``T`` the library (tracegrad or torch) and
``C`` the compile decorator (identity for eager); it returns plain Python values. The case is
run eagerly, compiled (twice, so the cache-hit path runs too), against an explicit expected
value, and against PyTorch when importable.
"""
from __future__ import annotations

import warnings

import pytest

import tracegrad as tg


def _eager(f):
    return f


CASES = {}


def case(expected):
    def register(fn):
        CASES[fn.__name__] = (fn, expected)
        return fn
    return register


@case([3.0, 3.0, 3.0])
def captured_nonleaf_and_its_leaf(T, C):
    # h = w * 2 is captured along with w: w's gradient must not come through h twice
    w = T.ones(3, requires_grad=True)
    h = w * 2

    @C
    def f(x):
        return (x * h + x * w).sum()
    f(T.ones(3)).backward()
    return w.grad.tolist()


@case((1, [3.0, 3.0, 3.0], [6.0, 6.0, 6.0]))
def hook_and_retain_grad_on_nonleaf_argument(T, C):
    a = T.ones(3, requires_grad=True)
    x = a * 2
    calls = []
    x.register_hook(lambda g: calls.append(1))
    x.retain_grad()

    @C
    def f(x):
        return (x * 3).sum()
    f(x).backward()
    return len(calls), x.grad.tolist(), a.grad.tolist()


@case((1, [1.0, 1.0, 1.0]))
def hook_on_captured_leaf(T, C):
    w = T.ones(3, requires_grad=True)
    calls = []
    w.register_hook(lambda g: calls.append(1))

    @C
    def f(x):
        return (x * w).sum()
    f(T.ones(3)).backward()
    return len(calls), w.grad.tolist()


@case((1, [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]))
def hook_and_retain_grad_on_captured_nonleaf(T, C):
    w = T.ones(3, requires_grad=True)
    h = w * 2
    calls = []
    h.register_hook(lambda g: calls.append(1))
    h.retain_grad()

    @C
    def f(x):
        return (x * h).sum()
    f(T.ones(3)).backward()
    return len(calls), h.grad.tolist(), w.grad.tolist()


@case((["a"], [3.0, 3.0], [3.0, 3.0, 3.0, 3.0]))
def two_outputs_of_one_eager_node_as_arguments(T, C):
    w = T.ones(4, requires_grad=True)
    a, b = (w * 1).chunk(2)
    calls = []
    a.register_hook(lambda g: calls.append("a"))
    b.retain_grad()

    @C
    def f(a, b):
        return (a * b * 3).sum()
    f(a, b).backward()
    return calls, b.grad.tolist(), w.grad.tolist()


@case((1, [3.0, 3.0, 3.0]))
def hook_registered_inside_on_an_argument(T, C):
    x = T.ones(3, requires_grad=True)
    calls = []

    @C
    def f(x):
        x.register_hook(lambda g: calls.append(1))
        return (x * 3).sum()
    f(x).backward()
    return len(calls), x.grad.tolist()


@case(([1.0, 1.0, 1.0], True))
def retain_grad_on_an_output_inside(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        y = x * 2
        y.retain_grad()
        return y
    y = f(x)
    y.sum().backward()
    return y.grad.tolist(), y.retains_grad


@case(([4.0, 4.0, 4.0], 1))
def retain_grad_and_hook_on_an_output_after_the_call(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        return x * 2
    y = f(x)
    y.retain_grad()
    calls = []
    y.register_hook(lambda g: calls.append(1))
    (y * y).sum().backward()
    return y.grad.tolist(), len(calls)


@case((True, False, [2.0, 2.0, 2.0]))
def enable_grad_inside_called_under_no_grad(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        with T.enable_grad():
            return x * 2
    with T.no_grad():
        y = f(x)
    facts = (y.requires_grad, y.is_leaf)
    y.sum().backward()
    return facts + (x.grad.tolist(),)


@case((True, [2.0, 2.0, 2.0]))
def set_grad_enabled_inside_called_under_no_grad(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        with T.set_grad_enabled(True):
            return x * 2
    with T.no_grad():
        y = f(x)
    r = y.requires_grad
    y.sum().backward()
    return r, x.grad.tolist()


@case(((False, True), [3.0, 3.0, 3.0]))
def enable_grad_for_part_of_the_function(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        a = x * 2
        with T.enable_grad():
            b = x * 3
        return a, b
    with T.no_grad():
        a, b = f(x)
    r = (a.requires_grad, b.requires_grad)
    b.sum().backward()
    return r, x.grad.tolist()


@case((False, True, True, True))
def no_grad_inside_called_with_grad(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        with T.no_grad():
            y = x * 2
        return y, x * 3
    y, z = f(x)
    return y.requires_grad, y.grad_fn is None, z.requires_grad, y.is_leaf


@case((False, True))
def inference_mode_inside(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        with T.inference_mode():
            return x * 2
    y = f(x)
    return y.requires_grad, y.is_leaf


@case((False, False))
def set_grad_enabled_false_leaks_out_as_in_eager(T, C):
    x = T.ones(3, requires_grad=True)

    @C
    def f(x):
        T.set_grad_enabled(False)
        return x * 2
    try:
        y = f(x)
        return y.requires_grad, T.is_grad_enabled()
    finally:
        T.set_grad_enabled(True)


def _run(name, T, C):
    fn, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a silent fallback to eager would hide the compiler
        return fn(T, C)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_gives_the_expected_value(name):
    assert _run(name, tg, _eager) == CASES[name][1]


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_equals_eager(name):
    expected = CASES[name][1]
    assert _run(name, tg, tg.compile) == expected


def test_cache_hits_fire_hooks_once_per_backward():
    f = tg.compile(lambda x: (x * 3).sum())
    for _ in range(3):
        a = tg.ones(3, requires_grad=True)
        x = a * 2
        calls = []
        x.register_hook(lambda g: calls.append(1))
        x.retain_grad()
        f(x).backward()
        assert len(calls) == 1 and x.grad.tolist() == [3.0] * 3 and a.grad.tolist() == [6.0] * 3
    assert f.stats["traces"] == 1 and f.stats["hits"] == 2


def test_cache_hits_under_no_grad_keep_enable_grad_inside():
    @tg.compile
    def f(x):
        with tg.enable_grad():
            return x * 2
    for _ in range(3):
        x = tg.ones(3, requires_grad=True)
        with tg.no_grad():
            y = f(x)
        assert y.requires_grad and not y.is_leaf
        y.sum().backward()
        assert x.grad.tolist() == [2.0] * 3
    assert f.stats["traces"] == 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_equals_torch(name):
    torch = pytest.importorskip("torch")
    assert _run(name, torch, _eager) == CASES[name][1]


def test_compiled_backward_does_not_walk_the_eager_graph_behind_an_argument():
    # the eager history of an argument is left to the eager engine: a long chain before the
    # call is not visited (nor its node hooks run) while the compiled backward is derived
    a = tg.ones(3, requires_grad=True)
    x = a
    for _ in range(50):
        x = x * 1.0
    seen = []
    x.grad_fn.register_prehook(lambda gs: seen.append("pre"))
    f = tg.compile(lambda t: (t * 2).sum())
    f(x).backward()
    assert seen == ["pre"]
    assert a.grad.tolist() == [2.0, 2.0, 2.0]


def test_create_graph_backward_through_a_call_with_inplace_changes_raises_not_reapplies():
    # the eager replay that gives create_graph its graph would apply x1.mul_(2) a second
    # time (a silent wrong x1, found by the fuzzer); it raises instead, and x1 is untouched
    def body(x2, x1):
        x1.mul_(2)
        return x2 * 3
    f = tg.compile(body)
    x2, x1 = tg.ones(2, requires_grad=True), tg.tensor([1., 1.])
    out = f(x2, x1)
    assert x1.tolist() == [2., 2.]
    with pytest.raises(RuntimeError, match="changed tensors in place is not supported"):
        out.sum().backward(create_graph=True)
    assert x1.tolist() == [2., 2.]
    out2 = f(x2, tg.tensor([1., 1.]))
    out2.sum().backward()  # without create_graph the compiled backward runs as before
    assert x2.grad.tolist() == [3., 3.]
