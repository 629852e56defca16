"""PyTorch's exceptions (type and message) and result dtypes, where tracegrad used to let a jax
error through or silently promote: matmul and its kernels, F.linear, losses, where, clamp,
integer inputs to float-only ops, empty reductions, broadcasting.

``CASES`` are run on both libraries and compared (type, message; or dtype and shape);
``PINNED`` checks a few messages without PyTorch."""
from __future__ import annotations

import warnings

import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

CASES = """
lib.clamp(f32)
f32.clamp()
f32.clamp_()
f32 @ f64
lib.matmul(f32, f64)
lib.mm(f32, f64)
lib.bmm(b32, b64)
lib.mv(f32, v64)
lib.mv(lib.ones(2, 3, dtype=lib.float64), lib.ones(3))
lib.dot(v32, v64)
lib.matmul(v32, v64)
lib.matmul(f32, v64)
lib.matmul(v32, f64.t())
lib.matmul(lib.ones(3), lib.ones(3, 4, dtype=lib.float64))
lib.matmul(b32, f64)
lib.matmul(b32, v64)
lib.matmul(lib.ones(2, 2, 3), lib.ones(2, 3, 5, dtype=lib.float64))
lib.matmul(lib.ones(2, 3), lib.ones(2, 3, 5, dtype=lib.float64))
lib.mm(lib.ones(2, 3, dtype=lib.int64), lib.ones(3, 4))
lib.mm(lib.ones(2, 3, dtype=lib.float16), lib.ones(3, 4))
lib.mm(lib.ones(2, 3, dtype=lib.uint8), lib.ones(3, 4))
lib.dot(lib.ones(3, dtype=lib.int64), lib.ones(3))
lib.tensor([1, 2]) @ lib.tensor([1., 2.])
lib.ones(2, 3) @ lib.ones(4, 5)
lib.mm(lib.ones(2, 3), lib.ones(4, 5))
lib.mm(lib.ones(2, 3, dtype=lib.float64), lib.ones(4, 5))
lib.ones(3) @ lib.ones(4)
lib.ones(2, 3) @ lib.ones(4)
lib.ones(3) @ lib.ones(4, 5)
lib.ones(2, 2, 3) @ lib.ones(4, 5)
lib.ones(2, 2, 3) @ lib.ones(4)
lib.ones(2, 2, 3) @ lib.ones(3, 2, 3, 5)
lib.ones(2, 2, 3) @ lib.ones(3, 2, 4, 5)
lib.ones(2, 2, 3) @ lib.ones(2, 4, 5)
lib.ones(2, 3) @ lib.ones(2, 4, 5)
lib.ones(2, 2, 3) @ lib.ones(3, 3, 3, 5)
lib.ones(3).matmul(lib.tensor(1.0))
lib.bmm(lib.ones(2, 2, 3), lib.ones(3, 3, 5))
lib.bmm(lib.ones(2, 2, 3), lib.ones(2, 4, 5))
lib.bmm(lib.ones(3, 3), lib.ones(3, 1))
lib.bmm(lib.ones(2, 2, 3), lib.ones(2, 3))
lib.mv(lib.ones(2, 3), lib.ones(4))
lib.mv(lib.ones(3), lib.ones(3))
lib.mv(lib.ones(2, 3), lib.ones(3, 1))
lib.dot(lib.ones(3), lib.ones(4))
lib.dot(lib.ones(3), lib.ones(3, 1))
lib.mm(lib.ones(3), lib.ones(3, 1))
lib.mm(lib.ones(2, 3), lib.ones(3))
lib.outer(lib.ones(3), lib.ones(2, 2))
F.linear(f32, f64.t())
F.linear(lib.ones(2, 3, dtype=lib.float64), lib.ones(4, 3))
F.linear(f32, lib.ones(4, 3), lib.ones(4, dtype=lib.float64))
F.linear(f32, lib.ones(4, 3, dtype=lib.float64), lib.ones(4, dtype=lib.float64))
F.linear(lib.ones(2, 3, dtype=lib.float64), lib.ones(4, 3, dtype=lib.float64), lib.ones(4))
F.linear(v32, lib.ones(4, 3, dtype=lib.float64))
F.linear(b32, lib.ones(4, 3, dtype=lib.float64))
F.linear(b32, lib.ones(4, 3), lib.ones(4, dtype=lib.float64))
F.linear(lib.ones(3), lib.ones(4, 3), lib.ones(4, dtype=lib.float64))
F.linear(lib.ones(2, 3), lib.ones(4, 3), lib.tensor(1.0, dtype=lib.float64))
F.linear(lib.ones(2, 3), lib.ones(4, 5))
F.linear(lib.ones(2, 2, 3), lib.ones(4, 5))
F.linear(lib.ones(2, 3), lib.ones(4, 5), lib.ones(4))
F.linear(lib.ones(2, 2, 3), lib.ones(4, 3), lib.ones(5))
F.linear(lib.ones(3), lib.ones(4, 3), lib.ones(5))
F.linear(lib.ones(2, 3), lib.ones(4, 3), lib.ones(3, 4))
F.linear(lib.ones(2, 3), lib.ones(4, 3), lib.ones(2, 4))
F.linear(lib.ones(2, 2, 3), lib.ones(4, 3), lib.ones(2, 1, 4))
F.linear(lib.ones(2, 2, 3), lib.ones(4, 3), lib.ones(3, 1, 4))
F.linear(lib.ones(2, 2, 3), lib.ones(4, 3), lib.ones(3, 4))
F.linear(lib.ones(2, 3), lib.ones(3))
F.linear(lib.ones(2, 3), lib.ones(3), lib.ones(2))
F.linear(lib.ones(2, 3), lib.ones(2, 2, 3))
F.linear(lib.ones(3), lib.ones(4, 3), lib.tensor(1.0))
F.linear(lib.ones(0, 3), lib.ones(4, 3), lib.ones(4))
F.cross_entropy(lg, i32)
F.nll_loss(lg, i32)
F.cross_entropy(lg, lib.tensor([0, 1], dtype=lib.int16))
F.cross_entropy(lg, lib.tensor([0, 1], dtype=lib.uint8))
F.nll_loss(lg, lib.tensor([0, 1], dtype=lib.uint8))
F.cross_entropy(lg, lib.tensor([0., 1.]))
F.nll_loss(lg, lib.tensor([0., 1.]))
F.cross_entropy(lg, lib.tensor([True, False]))
F.cross_entropy(lg, lib.tensor([0., 1., 2.]))
F.cross_entropy(lg, lib.zeros(2, 5))
F.nll_loss(lib.zeros(4), lib.tensor([0, 1]))
F.nll_loss(lib.zeros(3, 4), lib.zeros(3, 5).long())
F.nll_loss(lib.zeros(3, 4, 2), lib.zeros(3, 5).long())
F.nll_loss(lib.zeros(3, 4), lib.zeros(2).long())
F.nll_loss(lg, i64, weight=lib.ones(3, dtype=lib.float64))
F.nll_loss(lg, i64, weight=lib.ones(4))
F.mse_loss(lib.ones(3), lib.ones(4))
F.mse_loss(lib.ones(3), lib.ones(3, dtype=lib.float64))
F.mse_loss(lib.ones(3), lib.ones(3, dtype=lib.int64))
F.mse_loss(lib.ones(3, dtype=lib.int64), lib.ones(3, dtype=lib.int64))
lib.where(cond, 2.0, -1.0)
lib.where(cond, 2, -1)
lib.where(cond, 2, -1.0)
lib.where(cond, True, False)
lib.where(cond, v32[:2], 1.0)
lib.where(cond, v64[:2], 1)
lib.where(cond, lib.tensor([1, 2]), 1.5)
lib.where(cond, lib.tensor(1.0, dtype=lib.float64), v32[:2])
lib.where(cond, lib.tensor([1, 2]), lib.tensor(1.5))
lib.where(lib.tensor([1, 0]), 2.0, 1.0)
lib.where(lib.tensor([1, 0], dtype=lib.uint8), 2.0, 1.0)
lib.where(lib.tensor([1., 0.]), 2.0, 1.0)
lib.where(lib.tensor([True, False, True]), lib.ones(2), 0.0)
lib.ones(3) + lib.ones(4)
lib.ones(3) * lib.ones(2, 4)
lib.maximum(lib.ones(3), lib.ones(4))
lib.ones(3).add_(lib.ones(2, 3))
lib.ones(3) / lib.ones(4)
lib.ones(3) > lib.ones(4)
lib.clamp(lib.ones(3), lib.ones(4))
lib.clamp(lib.ones(3), max=lib.ones(2, 2))
lib.clamp(lib.ones(3, dtype=lib.int64), 0.5)
lib.clamp(lib.ones(3, dtype=lib.int64), 0, 2)
lib.clamp(lib.ones(3), lib.tensor(0.0, dtype=lib.float64))
F.softmax(lib.tensor([1, 2]), 0)
F.softmax(lib.tensor([[1, 2]]), 0)
F.log_softmax(lib.tensor([1, 2]), 0)
F.log_softmax(lib.tensor([[1, 2]]), 0)
F.softmax(lib.tensor([True]), 0)
F.softmax(lib.tensor([[1, 2]]), 0, dtype=lib.float64)
lib.tensor([1, 2]).var()
lib.tensor([1, 2]).std(0)
lib.tensor([1, 2]).mean()
lib.tensor([1, 2]).norm()
lib.argmax(lib.ones(0))
lib.ones(0).max()
lib.ones(0).min()
lib.ones(0).amax()
lib.ones(0).amin()
lib.ones(2, 0).max(1)
lib.ones(2, 0).min(1)
lib.ones(2, 0).amax(1)
lib.ones(2, 0).amin((0, 1))
lib.ones(2, 0).argmax(1)
lib.ones(2, 0).argmin(1)
lib.ones(2, 0).amax(0)
lib.ones(2, 0).argmax(0)
lib.ones(2, 0).max(0).values
lib.ones(0).norm(float('inf'))
lib.ones(0).norm(float('-inf'))
lib.ones(2, 0).norm(float('inf'), dim=1)
lib.ones(2, 0).norm(float('inf'), dim=0)
lib.ones(2, 0).logsumexp(1)
lib.ones(2, 0).softmax(1)
lib.tensor([1, 2], dtype=lib.int32).sum()
lib.tensor([True, False]).sum(0)
lib.tensor([1, 2]).sum(dtype=lib.float32)
"""


def run(lib, F, expr):
    env = dict(lib=lib, F=F, f32=lib.ones(2, 3), f64=lib.ones(3, 4, dtype=lib.float64),
               v32=lib.ones(3), v64=lib.ones(3, dtype=lib.float64), b32=lib.ones(2, 2, 3),
               b64=lib.ones(2, 3, 4, dtype=lib.float64), i64=lib.tensor([0, 1]),
               i32=lib.tensor([0, 1], dtype=lib.int32), lg=lib.zeros(2, 3),
               cond=lib.tensor([True, False]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = eval(expr, env)
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return ("err", type(e).__name__, str(e).split("\n")[0].replace("torch.", "tracegrad."))
    return ("ok", str(r.dtype).split(".")[-1], tuple(r.shape))


ROWS = [c.strip() for c in CASES.strip().split("\n")]


@pytest.mark.parametrize("expr", ROWS)
def test_matches_pytorch(expr, torch_ref):
    ours, theirs = run(tg, F, expr), run(torch_ref, torch_ref.nn.functional, expr)
    assert ours == theirs


PINNED = [
    ("lib.clamp(f32)", RuntimeError, "torch.clamp: At least one of 'min' or 'max' must not be None"),
    ("f32 @ f64", RuntimeError, "expected m1 and m2 to have the same dtype, but got: float != double"),
    ("F.linear(f32, f64.t())", RuntimeError,
     "expected m1 and m2 to have the same dtype, but got: float != double"),
    ("F.linear(f32, lib.ones(4, 3, dtype=lib.float64), lib.ones(4, dtype=lib.float64))",
     RuntimeError, "mat1 and mat2 must have the same dtype, but got Float and Double"),
    ("F.cross_entropy(lg, i32)", RuntimeError, "expected target dtype to be Long or Byte, but got Int"),
    ("lib.ones(2, 3) @ lib.ones(4, 5)", RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ("lib.ones(3) + lib.ones(4)", RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"),
    ("lib.dot(v32, v64)", RuntimeError,
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    ("lib.bmm(b32, b64)", RuntimeError, "expected scalar type Float but found Double"),
]


@pytest.mark.parametrize("expr,exc,msg", PINNED, ids=[p[0] for p in PINNED])
def test_pinned_messages(expr, exc, msg):
    # (run() writes torch.X in messages as tracegrad.X, for the expand error's type name)
    assert run(tg, F, expr) == ("err", exc.__name__, msg.replace("torch.", "tracegrad."))


def test_where_of_two_python_floats_is_the_default_dtype():
    cond = tg.tensor([True, False])
    assert tg.where(cond, 2.0, -1.0).dtype is tg.float32
    assert tg.where(cond, 2.0, -1.0).tolist() == [2.0, -1.0]
    assert tg.where(cond, 2, -1).dtype is tg.int64
    tg.set_default_dtype(tg.float64)
    try:
        assert tg.where(cond, 2.0, -1.0).dtype is tg.float64
    finally:
        tg.set_default_dtype(tg.float32)


def test_mixed_dtype_matmul_leaves_the_graph_usable():
    w = tg.ones(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="same dtype"):
        tg.ones(2, 3, dtype=tg.float64) @ w
    (tg.ones(2, 3) @ w).sum().backward()
    assert w.grad.tolist() == [[2.0] * 4] * 3
