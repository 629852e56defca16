"""Per-thread state (tracegrad/_state.py): grad mode, the tracer and the profiler of one thread
never change what another thread records. Each test runs two real threads that overlap: one
holds the state open (a trace, a profile, a no_grad block) and waits while the other runs
eager ops."""
import threading

import jax
import numpy as np

import tracegrad as tg
from tracegrad._state import STATE
from tracegrad.autograd import profiler

_TIMEOUT = 60  # seconds; only reached if a thread is stuck (then the test fails, not hangs)


def _run_while(hold, other):
    """Run ``hold(wait)`` in a new thread; ``wait()`` blocks it until ``other()`` has run in
    this thread. Returns (hold's result, other's result); re-raises either's exception."""
    entered, released = threading.Event(), threading.Event()
    box = {}

    def wait():
        entered.set()
        assert released.wait(_TIMEOUT)

    def target():
        try:
            box["held"] = hold(wait)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = e
            entered.set()

    th = threading.Thread(target=target)
    th.start()
    try:
        assert entered.wait(_TIMEOUT)
        result = other()
    finally:
        released.set()
        th.join(_TIMEOUT)
    if "error" in box:
        raise box["error"]
    return box["held"], result


def test_eager_ops_in_one_thread_while_another_traces_are_eager():
    seen = {}

    def hold(wait):
        @tg.compile
        def f(x):
            y = x * 2
            seen["tracer"] = STATE.tracer
            wait()  # the main thread runs eager ops now, while this trace is open
            return y.sum()

        x = tg.ones(3, requires_grad=True)
        out = f(x)
        out.backward()
        return f, out, x.grad

    def other():
        a = tg.ones(3, requires_grad=True)
        b = a + 1
        c = (b * b).sum()
        c.backward()
        return STATE.tracer, b, c, a.grad

    (f, out, xgrad), (tracer_here, b, c, agrad) = _run_while(hold, other)
    assert seen["tracer"] is not None and tracer_here is None
    assert isinstance(b._data.value, jax.Array) and not isinstance(b._data.value, jax.core.Tracer)
    np.testing.assert_array_equal(b.numpy(force=True), [2., 2., 2.])
    assert c.item() == 12.0 and type(b.grad_fn).__name__ == "AddBackward0"
    np.testing.assert_array_equal(agrad.numpy(), [4., 4., 4.])
    # the trace holds only its own thread's ops: a mul and a sum, no add
    src = f.source("forward")
    assert "mul(" in src and "add(" not in src
    assert out.item() == 6.0
    np.testing.assert_array_equal(xgrad.numpy(), [2., 2., 2.])


def test_a_profile_in_one_thread_does_not_record_another():
    def hold(wait):
        with profiler.profile() as prof:
            tg.ones(2) * 3.0
            wait()
        return prof

    def other():
        a = tg.ones(2, requires_grad=True)
        (a + 1.0).sum().backward()
        return STATE.profiler

    prof, prof_here = _run_while(hold, other)
    assert prof_here is None
    assert [e.name for e in prof.events()] == ["aten::mul"]


def test_no_grad_in_one_thread_does_not_change_another():
    def hold(wait):
        with tg.no_grad():
            wait()
            return (tg.ones(2, requires_grad=True) * 2).requires_grad

    def other():
        return (tg.ones(2, requires_grad=True) * 2).requires_grad

    held, here = _run_while(hold, other)
    assert held is False and here is True


def test_a_new_thread_starts_with_default_state():
    got = {}

    def work():
        got["state"] = (STATE.grad_enabled, STATE.inference, STATE.tracer, STATE.profiler)

    with tg.no_grad(), profiler.profile():
        th = threading.Thread(target=work)
        th.start()
        th.join(_TIMEOUT)
    assert got["state"] == (True, False, None, None)
