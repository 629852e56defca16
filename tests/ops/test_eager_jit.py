"""The eager jit cache (ops/_registry.py: _eager) changes nothing observable: for every
registry sample, the first calls (run op by op) and the later ones (one jitted executable)
give bitwise the same forward values and gradients, so backward stays deterministic."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad
from tracegrad.ops import REG
from tracegrad.ops import _registry as R

CASES = [(op, i, s) for op in REG.values() if op.samples for i, s in enumerate(op.samples)]
IDS = [f"{op.name}-{i}" for op, i, _ in CASES]


def _args(op, i, sample):
    return sample.arguments(sample.random_arrays(op.domain, i), dtype=tracegrad.float32,
                            requires_grad=op.differentiable)


def _run(op, sample, args):
    fn = sample.call or op.public
    for a in args:
        if isinstance(a, tracegrad.Tensor):
            a.grad = None
    out = fn(*args, **sample.kwargs)
    res = [np.asarray(out.detach().numpy())]
    if out.requires_grad:
        out.backward(tracegrad.ones_like(out))
        res += [a.grad.numpy() for a in args
                if isinstance(a, tracegrad.Tensor) and a.grad is not None]
    return res


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_jitted_calls_match_the_first_calls_bitwise(op, i, sample):
    assert R.EAGER_JIT
    args = _args(op, i, sample)
    runs = [_run(op, sample, args) for _ in range(R._JIT_AFTER + 2)]
    for later in runs[1:]:
        assert len(later) == len(runs[0])
        for a, b in zip(runs[0], later):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b, equal_nan=True), np.max(np.abs(a - b))


def test_a_key_is_jitted_after_it_repeats_and_not_before():
    op = REG["mul"]
    x = tracegrad.randn(7, dtype=tracegrad.float64)  # a signature no other test uses first
    key = (None, (int, 3))
    op._jit_cache.pop(key, None)
    x * 3
    assert op._jit_cache[key] == 1
    x * 3
    assert op._jit_cache[key].__class__ is tuple  # (jitted impl, dynamic positions)
