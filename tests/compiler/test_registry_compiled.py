"""Compiled against eager, generated from the op registry: every ``Sample`` of every op in
``tracegrad.ops.REG`` runs once eagerly and once through ``tracegrad.compile``.

Per sample: the compiled output has the eager output's shape, dtype, value and autograd facts
(``requires_grad``, ``is_leaf``); and for a random cotangent ``v`` the gradients of
``(out * v).sum()`` with respect to every input that requires grad, through the compiled
function's generated backward, equal the eager engine's.

A sample whose eager run needs a tensor's concrete value (``Tensor._concrete``: boolean-mask
indexing, ``nonzero``, ...) cannot be traced: under ``fullgraph=True`` it must raise
``GraphBreak``, and with ``fullgraph=False`` it must warn and still give the eager answer. That
is decided from what the sample does, not from the op's name, so a new op is covered with no
edit here.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import tracegrad as tg
from tracegrad._tensor import Tensor
from tracegrad.compiler import CompiledFunctionBackward, GraphBreak
from tracegrad.ops import REG

CASES = [(op, i, s) for op in REG.values() if op.samples for i, s in enumerate(op.samples)]
IDS = [f"{op.name}-{i}" for op, i, _ in CASES]

FORWARD_TOL = {"rtol": 1e-12, "atol": 1e-12}
GRAD_TOL = {"rtol": 1e-9, "atol": 1e-11}


def _rng(op, i, salt):
    return np.random.default_rng(zlib.crc32(f"compiled/{op.name}/{i}/{salt}".encode()))


def _arrays(op, i, sample):
    return sample.random_arrays(op.domain, f"compiled/{op.name}/{i}/x")


def _args(sample, arrays):
    """Fresh tensors for the sample: float64 shape args require grad."""
    return sample.arguments(arrays)


def _fn(op, sample):
    call = sample.call or op.public
    kwargs = sample.kwargs

    def sample_fn(*args):
        return call(*args, **kwargs)
    return sample_fn


_NEED_VALUES = set()  # samples seen (by the test above) to read a concrete value


def _value(t):
    return np.asarray(t._data.value)


class _ConcreteSpy:
    """Counts ``Tensor._concrete`` calls: the one door through which code reads a value."""

    def __init__(self, monkeypatch):
        self.calls = []
        orig = Tensor._concrete

        def spy(t, what):
            self.calls.append(what)
            return orig(t, what)
        monkeypatch.setattr(Tensor, "_concrete", spy)


def _grads(out, args, v):
    inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    if not out.requires_grad:
        return inputs, None
    return inputs, tg.autograd.grad((out * tg.tensor(v)).sum(), inputs, allow_unused=True)


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_compiled_matches_eager(op, i, sample, monkeypatch):
    fn = _fn(op, sample)
    arrays = _arrays(op, i, sample)
    spy = _ConcreteSpy(monkeypatch)
    eager_args = _args(sample, arrays)
    eager = fn(*eager_args)
    needs_value = bool(spy.calls)
    if needs_value:
        _NEED_VALUES.add(f"{op.name}-{i}")
    assert isinstance(eager, Tensor), f"sample {sample!r} of {op.name} must return one tensor"

    args = _args(sample, arrays)
    cf = tg.compile(fn, fullgraph=True)
    if needs_value:
        # the sample reads a value eagerly: tracing it must break the graph, naming the reason
        with pytest.raises(GraphBreak, match="depends on a tensor's value"):
            cf(*args)
        assert cf.stats["graph_breaks"] == 1
        cf = tg.compile(fn)  # fullgraph=False: warn once, then run eagerly
        with pytest.warns(UserWarning, match="Running sample_fn eagerly"):
            out = cf(*args)
        assert cf.stats["graph_breaks"] == 1
    else:
        out = cf(*args)
        assert cf.stats["graph_breaks"] == 0 and cf.stats["traces"] == 1

    what = f"{op.name} {sample!r}"
    assert isinstance(out, Tensor), what
    assert tuple(out.shape) == tuple(eager.shape), f"{what}: shape {out.shape} != {eager.shape}"
    assert out.dtype is eager.dtype, f"{what}: dtype {out.dtype} != {eager.dtype}"
    np.testing.assert_allclose(_value(out), _value(eager), err_msg=f"{what}: forward",
                               **op.tolerance(FORWARD_TOL))
    assert out.requires_grad == eager.requires_grad, f"{what}: requires_grad"
    assert out.is_leaf == eager.is_leaf, f"{what}: is_leaf"
    if out.requires_grad and not needs_value:
        assert isinstance(out.grad_fn, CompiledFunctionBackward), f"{what}: {out.grad_fn!r}"

    if not eager.requires_grad:
        return
    v = _rng(op, i, "v").standard_normal(tuple(eager.shape)).astype(eager.dtype.np)
    inputs, got = _grads(out, args, v)
    _, want = _grads(eager, eager_args, v)
    assert len(got) == len(want) == len(inputs)
    for k, (a, b) in enumerate(zip(got, want)):
        a = np.zeros(inputs[k].shape) if a is None else _value(a)
        b = np.zeros(inputs[k].shape) if b is None else _value(b)
        np.testing.assert_allclose(a, b, err_msg=f"{what}: gradient of input {k}",
                                   **op.tolerance(GRAD_TOL))
    for a in args:  # autograd.grad leaves .grad alone, compiled or not
        if isinstance(a, Tensor):
            assert a.grad is None


def test_some_sample_exercises_the_graph_break_fallback(monkeypatch):
    """Guards the generic branch above: at least one registry sample reads a value (known from
    the run above, or found by running the samples when this test runs alone)."""
    for op, i, sample in CASES:
        if _NEED_VALUES:
            break
        spy = _ConcreteSpy(monkeypatch)
        _fn(op, sample)(*_args(sample, _arrays(op, i, sample)))
        if spy.calls:
            _NEED_VALUES.add(f"{op.name}-{i}")
        monkeypatch.undo()
    assert _NEED_VALUES, "no registry sample needs a concrete value; the fallback path is untested"
