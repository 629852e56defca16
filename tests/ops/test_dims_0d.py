"""Dims as PyTorch takes them: 0-d tensors accept dim 0 and -1 wherever a dim is taken, tuple
dims, keepdim, ties (max/argmax pick the first index; amax/amin share the gradient evenly).

Every row of ``CASES`` runs on a 0-d, a size-1 and an ordinary input (with ties) and is compared
with PyTorch (value, shape, dtype, grad_fn name, gradient); ``EXPECTED`` pins the 0-d results
without PyTorch."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

INF = float("inf")

CASES = [
    "t.sum(0)", "t.sum(-1)", "t.sum((0,))", "t.sum(0, keepdim=True)", "t.sum(())",
    "t.sum(-1, dtype=lib.float32)",
    "t.mean(0)", "t.mean(-1, keepdim=True)", "t.mean(())",
    "t.amax(0)", "t.amin(-1)", "t.amax((0,))", "t.amax()", "t.amin(0, keepdim=True)",
    "t.max(0)", "t.max(dim=-1, keepdim=True)", "t.min(0)", "t.min(-1, keepdim=True)",
    "lib.max(t, 0)", "t.max()", "t.min()",
    "t.max(0).indices", "t.min(-1, keepdim=True).indices",
    "t.argmax(0)", "t.argmin(-1)", "t.argmax(0, keepdim=True)", "t.argmax()",
    "t.argmax(keepdim=True)",
    "t.var(0)", "t.var(0, correction=0)", "t.var(-1, keepdim=True)", "t.std(0)",
    "t.std(0, unbiased=False)", "t.std(-1, correction=0, keepdim=True)",
    "t.logsumexp(0)", "t.logsumexp(-1, keepdim=True)",
    "t.norm()", "t.norm(dim=0)", "t.norm(p=1, dim=0)", "t.norm(3)", "t.norm(0.5)", "t.norm(-1)",
    "t.norm(0)", "t.norm(INF, dim=-1)", "t.norm(-INF)", "t.norm(p='fro', dim=-1, keepdim=True)",
    "t.softmax(0)", "t.softmax(-1)", "t.log_softmax(0)", "t.log_softmax(-1)",
    "F.softmax(t, 0)", "F.log_softmax(t, -1)", "F.softmax(t, dim=-1, dtype=lib.float32)",
    # errors
    "t.sum(1)", "t.mean(-2)", "t.amax(1)", "t.max(1)", "t.argmax(1)", "t.var(1)",
    "t.logsumexp(1)", "t.softmax(1)", "F.log_softmax(t, -2)", "t.norm(dim=1)",
    "t.sum((0, -1))", "t.amax((0, 0))", "t.norm(dim=(0, -1))",
]
INPUTS = {"0d": 1.5, "size1": [2.0], "ties": [3.0, 1.0, 3.0], "zeros": [0.0, 0.0],
          "2d": [[1.0, 2.0, 2.0], [3.0, 3.0, -0.5]]}
# 2-d-only rows (a 2-d input takes dim 1; tuple dims over two dims)
CASES_2D = ["t.sum(1)", "t.sum((0, -1))", "t.sum((1, 0), keepdim=True)", "t.max(1)", "t.argmax(1)",
            "t.amax((0, 1))", "t.amin(1, keepdim=True)", "t.var((0, 1))", "t.norm(dim=(0, 1))",
            "t.logsumexp((0, 1))", "t.softmax(1)", "t.std(1)", "t.norm(INF, dim=0)"]


def run(lib, F, expr, x):
    """``(kind, ...)``: ``("ok", shape, dtype, value, grad_fn name, grad)`` or ``("err", type,
    message)``; the gradient is of ``(out * w).sum()`` with ``w = 1, 2, ...``."""
    t = lib.tensor(x, dtype=lib.float64, requires_grad=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = eval(expr, {"t": t, "lib": lib, "F": F, "INF": INF})
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return ("err", type(e).__name__, str(e).split("\n")[0])
    if isinstance(r, tuple):
        r = r[0]
    name = None if r.grad_fn is None else r.grad_fn.name()
    grad = None
    if r.requires_grad:
        w = np.arange(1, r.numel() + 1, dtype=np.float64).reshape(tuple(r.shape))
        (r * lib.tensor(w, dtype=r.dtype)).sum().backward()
        grad = None if t.grad is None else np.asarray(t.grad.tolist())
    return ("ok", tuple(r.shape), str(r.dtype).split(".")[-1], np.asarray(r.detach().tolist()),
            name, grad)


def same(a, b):
    if a[0] != b[0] or len(a) != len(b):
        return False
    for p, q in zip(a[1:], b[1:]):
        if isinstance(p, np.ndarray) or isinstance(q, np.ndarray):
            if p is None or q is None or p.shape != q.shape or not np.allclose(
                    p, q, rtol=1e-12, atol=1e-12, equal_nan=True):
                return False
        elif p != q:
            return False
    return True


ROWS = [(k, e) for k in INPUTS for e in CASES] + [("2d", e) for e in CASES_2D]


@pytest.mark.parametrize("inp,expr", ROWS, ids=[f"{k}:{e}" for k, e in ROWS])
def test_matches_pytorch(inp, expr, torch_ref):
    import torch.nn.functional as TF
    ours = run(tg, F, expr, INPUTS[inp])
    theirs = run(torch_ref, TF, expr, INPUTS[inp])
    assert same(ours, theirs), f"{expr} on {INPUTS[inp]}:\n  tracegrad {ours}\n  torch     {theirs}"


# The 0-d results, pinned without PyTorch: (expr, value, grad_fn name, grad of out.sum())
EXPECTED = [
    ("t.sum(0)", 1.5, "SumBackward1", 1.0), ("t.sum(-1, keepdim=True)", 1.5, "SumBackward1", 1.0),
    ("t.mean(0)", 1.5, "MeanBackward1", 1.0), ("t.amax(0)", 1.5, "AmaxBackward0", 1.0),
    ("t.amin(-1)", 1.5, "AminBackward0", 1.0), ("t.max(0).values", 1.5, "MaxBackward0", 1.0),
    ("t.min(-1).values", 1.5, "MinBackward0", 1.0), ("t.var(0)", math.nan, "VarBackward0", math.nan),
    ("t.var(0, correction=0)", 0.0, "VarBackward0", 0.0),
    ("t.std(0, unbiased=False)", 0.0, "StdBackward0", 0.0),
    ("t.logsumexp(0)", 1.5, "LogsumexpBackward0", 1.0),
    ("t.norm(dim=0)", 1.5, "LinalgVectorNormBackward0", 1.0),
    ("t.softmax(0)", 1.0, "SoftmaxBackward0", 0.0),
    ("t.log_softmax(-1)", 0.0, "LogSoftmaxBackward0", 0.0),
]


@pytest.mark.parametrize("expr,value,name,grad", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_0d_dims_explicit(expr, value, name, grad):
    t = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    r = eval(expr, {"t": t})
    assert r.shape == () and r.grad_fn.name() == name
    np.testing.assert_equal(r.item(), value)
    r.backward()
    np.testing.assert_equal(t.grad.item(), grad)


def test_0d_indices_and_argmax():
    t = tg.tensor(1.5)
    for r in (t.max(0).indices, t.min(-1, keepdim=True).indices, t.argmax(0), t.argmin(-1),
              t.argmax(0, keepdim=True), t.argmax()):
        assert r.shape == () and r.dtype is tg.int64 and r.item() == 0


@pytest.mark.parametrize("expr", ["t.sum(1)", "t.max(1)", "t.argmax(1)", "t.softmax(1)",
                                  "t.var(1)", "t.logsumexp(1)", "t.norm(dim=1)", "t.amax((0, 1))"])
def test_0d_dim_out_of_range(expr):
    t = tg.tensor(1.5, requires_grad=True)
    with pytest.raises(IndexError, match=r"^Dimension out of range \(expected to be in range of "
                                         r"\[-1, 0\], but got 1\)$"):
        eval(expr, {"t": t})
    assert t.sum(0).grad_fn is not None  # nothing left half-changed


@pytest.mark.parametrize("shape", [(), (3,)])
def test_repeated_dim(shape):
    t = tg.ones(shape)
    with pytest.raises(RuntimeError, match=r"^dim 0 appears multiple times in the list of dims$"):
        t.sum((0, -1))


def test_ties_max_dim_picks_first_amax_shares():
    x = tg.tensor([[3.0, 1.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    v, i = x.max(1)
    assert i.tolist() == [0, 0] and x.argmax(1).tolist() == [0, 0]
    v.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    x.grad = None
    x.amax(1).sum().backward()
    assert x.grad.tolist() == [[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]
    x.grad = None
    x.max().backward()  # the full max shares like amax
    assert x.grad.tolist() == [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]
    x.grad = None
    x.norm(INF).backward()
    assert x.grad.tolist() == [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]


def test_norm_gradient_at_zero_is_zero():
    for p in (2, 1, 3, 0.5, INF, -1):
        x = tg.zeros(2, requires_grad=True)
        x.norm(p).backward()
        assert x.grad.tolist() == [0.0, 0.0], p
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    x.norm(0.5).backward()
    assert x.grad.tolist() == [0.0, 1.0]
    x = tg.zeros(2, requires_grad=True)
    x.norm(0).backward()  # PyTorch: the 0-"norm" has no gradient at all
    assert x.grad is None


def test_norm_of_integer_tensor_raises():
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point or "
                                           "complex tensor as input. Got Long"):
        tg.tensor([1, 2]).norm()
