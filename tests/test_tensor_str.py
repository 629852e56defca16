"""Tests for tracegrad._tensor_str, on fake tensor objects (no other tracegrad module needed)."""
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tracegrad._tensor_str import SHORT, tensor_repr, type_desc


class _Dev(SimpleNamespace):
    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


class _GradFn:
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


def fake(value, dtype=None, device="cpu", index=None, requires_grad=False, grad_fn=None):
    value = value if hasattr(value, "shape") else np.asarray(value)
    if dtype is None:
        dtype = np.dtype(value.dtype).name
    return SimpleNamespace(
        _data=SimpleNamespace(value=value),
        dtype=SimpleNamespace(name=dtype),
        device=_Dev(type=device, index=index),
        requires_grad=requires_grad,
        grad_fn=None if grad_fn is None else _GradFn(grad_fn),
        is_leaf=grad_fn is None,
    )


f32 = np.float32


@pytest.mark.parametrize("t, expected", [
    (fake(np.array([1, 2], f32), requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
    (fake(np.array([6, 11], f32), requires_grad=True, grad_fn="AddBackward0"),
     "tensor([ 6., 11.], grad_fn=<AddBackward0>)"),
    (fake(np.array([5.7183, 10.3891], f32)), "tensor([ 5.7183, 10.3891])"),
    (fake(np.array(3, f32)), "tensor(3.)"),
    (fake(np.array(3.5, f32)), "tensor(3.5000)"),
    (fake(np.array(1, np.int64)), "tensor(1)"),
    (fake(np.array(True)), "tensor(True)"),
    # torch pads booleans to a common width
    (fake(np.array([True, False])), "tensor([ True, False])"),
    (fake(np.array([1, 2, 3], np.int32)), "tensor([1, 2, 3], dtype=tracegrad.int32)"),
    (fake(np.array([1, 2], np.float64)), "tensor([1., 2.], dtype=tracegrad.float64)"),
    (fake(np.array([[1, 2], [3, 4]], f32)), "tensor([[1., 2.],\n        [3., 4.]])"),
    (fake(np.array([1e-5, 1e5], f32)), "tensor([1.0000e-05, 1.0000e+05])"),
    (fake(np.array([np.inf, np.nan, 1], f32)), "tensor([inf, nan, 1.])"),
    (fake(np.array([-np.inf, 2.5], f32)), "tensor([  -inf, 2.5000])"),
    (fake(np.array([], f32)), "tensor([])"),
    (fake(np.zeros((0, 3), f32)), "tensor([], size=(0, 3))"),
    (fake(np.zeros((0,), np.int64)), "tensor([], dtype=tracegrad.int64)"),
    (fake(np.array([-1, 2], f32)), "tensor([-1.,  2.])"),
    (fake(jnp.array([1.5, 2.0], jnp.bfloat16)), "tensor([1.5000, 2.0000], dtype=tracegrad.bfloat16)"),
    (fake(np.array([1, 2], f32), device="cuda", index=0), "tensor([1., 2.], device='cuda:0')"),
    (fake(np.array([1, 2], f32), device="cuda"), "tensor([1., 2.], device='cuda:0')"),
    (fake(np.array([1, 2], np.float64), device="cuda", index=1, requires_grad=True),
     "tensor([1., 2.], device='cuda:1', dtype=tracegrad.float64, requires_grad=True)"),
])
def test_examples(t, expected):
    assert tensor_repr(t) == expected


def test_summarised_and_wrapped():
    assert tensor_repr(fake(np.arange(2000, dtype=np.int64))) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    long = tensor_repr(fake(np.arange(30, dtype=f32) / 7))
    lines = long.split("\n")
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("tensor([0.0000, 0.1429,") and lines[1].startswith("        1.2857")
    nd = tensor_repr(fake(np.zeros((2, 2, 2), f32)))
    assert nd == "tensor([[[0., 0.],\n         [0., 0.]],\n\n        [[0., 0.],\n         [0., 0.]]])"


def test_traced():
    class Sym:  # stand-in for a symbolic IR value
        shape, dtype = (2, 3), np.dtype(np.float32)

    t = fake(Sym(), dtype="float32", requires_grad=True, grad_fn="MulBackward0")
    assert tensor_repr(t) == "tensor(<traced f32[2, 3]>, grad_fn=<MulBackward0>)"

    seen = []

    def f(x):
        seen.append(tensor_repr(fake(x, dtype="int64")))
        return x

    jax.jit(f)(jnp.zeros((), jnp.int64))
    assert seen == ["tensor(<traced i64[]>)"]
    assert SHORT["bfloat16"] == "bf16" and SHORT["bool"] == "b8"


def test_type_desc():
    cpu, cuda = SimpleNamespace(type="cpu"), SimpleNamespace(type="cuda")
    assert type_desc(SimpleNamespace(value=np.zeros(2, f32), device=cpu)) == "torch.FloatTensor [2]"
    assert type_desc(SimpleNamespace(value=np.zeros((3, 4)), device=cuda)) == "torch.cuda.DoubleTensor [3, 4]"
    assert type_desc(SimpleNamespace(value=np.array(True), device=cpu)) == "torch.BoolTensor []"
    assert type_desc(SimpleNamespace(value=jnp.zeros(1, jnp.bfloat16), device=cpu)) == "torch.BFloat16Tensor [1]"


def _random_cases():
    rng = np.random.default_rng(0)
    shapes = [(), (1,), (5,), (17,), (40,), (3, 4), (2, 3, 4), (1001,), (50, 50), (4, 300),
              (2, 1, 3), (11, 11, 11), (3, 2, 2, 2), (0,), (2, 0)]
    scales = [1e-6, 1e-3, 1.0, 123.0, 1e5, 1e9]
    cases = []
    for i in range(40):
        shape = shapes[i % len(shapes)]
        kind = i % 8
        if kind == 0:
            a = rng.integers(-1000, 1000, shape).astype(np.int64)
        elif kind == 1:
            a = rng.integers(0, 9, shape).astype(np.int32)
        elif kind == 2:
            a = rng.random(shape) > 0.5
        elif kind == 3:
            a = rng.integers(-5, 5, shape).astype(f32)  # integral floats
        elif kind == 4:
            a = (rng.standard_normal(shape) * scales[i % len(scales)]).astype(np.float64)
        elif kind == 5:
            a = (rng.standard_normal(shape) * 3).astype(np.float16)
        elif kind == 6:
            a = (rng.standard_normal(shape) * scales[(i // 8) % len(scales)]).astype(f32)
            if a.size > 2:
                a.reshape(-1)[:3] = [np.nan, -np.inf, 0.0]
        else:
            a = (rng.standard_normal(shape) * 10).astype(f32)
            a = a.astype(jnp.bfloat16)
        cases.append(a)
    return cases


@pytest.mark.parametrize("arr", _random_cases(), ids=lambda a: f"{a.dtype}{a.shape}")
@pytest.mark.parametrize("rg", [False, True])
def test_matches_torch(arr, rg):
    torch = pytest.importorskip("torch")
    if arr.dtype.name == "bfloat16":
        tt = torch.tensor(arr.astype(f32)).to(torch.bfloat16)
    else:
        tt = torch.tensor(arr)
    if rg and tt.is_floating_point():
        tt.requires_grad_(True)
        expected_rg = repr(tt)
        assert tensor_repr(fake(arr, requires_grad=True)) == expected_rg.replace("torch.", "tracegrad.")
        out = tt * 1
        assert tensor_repr(fake(arr, requires_grad=True, grad_fn="MulBackward0")) == \
            repr(out).replace("torch.", "tracegrad.")
    else:
        assert tensor_repr(fake(arr)) == repr(tt).replace("torch.", "tracegrad.")


def test_type_desc_matches_torch_names():
    torch = pytest.importorskip("torch")
    for name in ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]:
        tt = torch.zeros(2, 3, dtype=getattr(torch, name))
        saved = SimpleNamespace(value=jnp.zeros((2, 3), getattr(jnp, name if name != "bool" else "bool_")),
                                device=SimpleNamespace(type="cpu"))
        assert type_desc(saved) == f"{tt.type()} [2, 3]"


_EDGE = [
    np.array([-0.0, 0.0], f32), np.array([np.nan, np.nan], f32), np.array([np.inf, -1.0], f32),
    np.array([1.0, 1e10], f32), np.array([1.0, 1e10, np.nan], np.float64), np.array([0.5, 1e-5], f32),
    np.array([1e9, 2e9], f32), np.array([12345.678], f32), np.array(-0.0, f32), np.array(np.nan, f32),
    np.array([2 ** 62, -3], np.int64), np.array([1, 255], np.uint8), np.array([-128, 5], np.int8),
    np.arange(25, dtype=np.float64) * 1.1, np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 1e6,
    np.linspace(-1, 1, 2000).astype(f32).reshape(40, 50), np.zeros((0, 2, 3), np.int32),
    np.zeros((0,), np.float64), np.zeros((3, 0), np.bool_), np.array([65504, -1], np.float16),
    np.array([1.0, 1001.0], f32), np.array([1.0, 999.0], f32), np.array([1e-4, 0.5], f32),
    np.arange(16, dtype=np.int16) * 1000, np.ones((1, 1, 1, 1, 2), f32),
]


@pytest.mark.parametrize("arr", _EDGE, ids=lambda a: f"{a.dtype}{a.shape}")
def test_edge_cases_match_torch(arr):
    torch = pytest.importorskip("torch")
    assert tensor_repr(fake(arr)) == repr(torch.tensor(arr)).replace("torch.", "tracegrad.")
    if arr.dtype.kind == "f":
        tt = torch.tensor(arr, requires_grad=True)
        assert tensor_repr(fake(arr, requires_grad=True)) == repr(tt).replace("torch.", "tracegrad.")
