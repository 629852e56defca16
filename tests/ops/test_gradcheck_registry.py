"""gradcheck and gradgradcheck for every registered op, generated from the registry.

Each differentiable op, on each of its ``Sample`` s, in float64 with inputs uniform in
``op.domain`` (default ``(-2, 2)``), must pass ``tracegrad.autograd.gradcheck`` (full
Jacobians, slow mode) and, where ``op.twice_differentiable``, ``gradgradcheck``: the VJP
rule's own ops, recorded under ``create_graph=True``, are checked against finite differences
of the first derivative. That is the op-by-op proof that higher-order gradients work. Ops
with kinks (``twice_differentiable=False``) are checked for what still holds there: with
``create_graph=True`` their gradient is recorded, as a (linear) function of ``grad_output``.
Tolerances default to gradcheck's and are widened (never narrowed) by ``op.tol``; an op's
``tol`` may also carry ``eps``. A new op with samples is covered with no edit here.
"""
from __future__ import annotations


import pytest

import tracegrad
from tracegrad.autograd import gradcheck, gradgradcheck
from tracegrad.ops import REG

CASES = [(op, i, s) for op in REG.values() if op.differentiable and op.samples
         for i, s in enumerate(op.samples)]
IDS = [f"{op.name}-{i}" for op, i, _ in CASES]
TWICE = [c for c in CASES if c[0].twice_differentiable]
TWICE_IDS = [f"{op.name}-{i}" for op, i, _ in TWICE]

DEFAULTS = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}


def _kwargs(op):
    """gradcheck's tolerances, widened by the op's ``tol`` (``eps`` taken as given)."""
    kw = {k: max(v, op.tol.get(k, 0.0)) for k, v in DEFAULTS.items() if k != "eps"}
    kw["eps"] = op.tol.get("eps", DEFAULTS["eps"])
    return kw


def _inputs(op, i, sample):
    """The sample's positional args: float64 tensors that require grad for shape args,
    each ``Const`` as a Python scalar or a tensor that does not (floating ones in float64)."""
    arrays = sample.random_arrays(op.domain, f"gradcheck/{op.name}/{i}")
    return tuple(sample.arguments(arrays, float_consts=tracegrad.float64))


def _fn(op, sample):
    call = sample.call or op.public
    return lambda *args: call(*args, **sample.kwargs)


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_gradcheck(op, i, sample):
    assert gradcheck(_fn(op, sample), _inputs(op, i, sample), **_kwargs(op))


# an op whose result is not float64 (convert) gets a grad_output of its dtype: PyTorch's
# "not a double precision" warning is expected there
@pytest.mark.filterwarnings("ignore:Input #\\d+ requires gradient and is not a double")
@pytest.mark.parametrize("op,i,sample", TWICE, ids=TWICE_IDS)
def test_gradgradcheck(op, i, sample):
    assert gradgradcheck(_fn(op, sample), _inputs(op, i, sample), **_kwargs(op))


ONCE = [c for c in CASES if not c[0].twice_differentiable]
ONCE_IDS = [f"{op.name}-{i}" for op, i, _ in ONCE]


@pytest.mark.parametrize("op,i,sample", ONCE, ids=ONCE_IDS)
def test_create_graph_records_ops_with_kinks(op, i, sample):
    """Ops with kinks (relu, abs, max...) are not checked for second derivatives in ``x``, but
    ``create_graph=True`` must still record their rule: the gradient is a differentiable,
    linear function of ``grad_output``, checked here by gradcheck with ``x`` held fixed."""
    fn, inputs = _fn(op, sample), _inputs(op, i, sample)
    diff = [t for t in inputs if isinstance(t, tracegrad.Tensor) and t.requires_grad]
    out = fn(*inputs)
    go = tracegrad.rand(tuple(out.shape), dtype=out.dtype, requires_grad=True)

    def grads_of(g):
        return tracegrad.autograd.grad(fn(*inputs), diff, g, create_graph=True)

    assert all(g.requires_grad and g.grad_fn is not None for g in grads_of(go))
    assert gradcheck(grads_of, (go,), **_kwargs(op))
