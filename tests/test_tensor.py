"""Tensor basics: dtypes and PyTorch's type promotion, devices, repr, conversions (numpy, item,
tolist), in-place ops and version counters, and how views behave (see docs/tensors.md for the
deliberate differences from PyTorch: dtype reprs, views that do not alias, numpy copies)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import _device


# ----------------------------------------------------------------------------- dtypes
def test_default_dtypes():
    assert torch.tensor([1.0, 2.0]).dtype is torch.float32  # Python floats -> float32
    assert torch.tensor([1, 2]).dtype is torch.int64
    assert torch.tensor([True]).dtype is torch.bool
    assert torch.zeros(2).dtype is torch.float32
    assert torch.get_default_dtype() is torch.float32
    assert torch.double is torch.float64 and torch.long is torch.int64 and torch.float is torch.float32


def test_set_default_dtype():
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.tensor([1.0]).dtype is torch.float64
        assert torch.zeros(1).dtype is torch.float64
        assert (torch.tensor([1]) * 1.5).dtype is torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.tensor([1.0]).dtype is torch.float32


def test_dtype_facts():
    assert torch.float32.is_floating_point and not torch.int64.is_floating_point
    assert torch.tensor([1.0]).element_size() == 4
    assert torch.tensor([1.0], dtype=torch.float64).element_size() == 8
    assert torch.tensor([1.0]).is_floating_point() and not torch.tensor([1]).is_floating_point()
    assert repr(torch.float64) == "tracegrad.float64"  # PyTorch: torch.float64


def _t(kind):
    return {
        "b": torch.tensor([True, False]),
        "u8": torch.tensor([1, 2], dtype=torch.uint8),
        "i8": torch.tensor([1, 2], dtype=torch.int8),
        "i32": torch.tensor([1, 2], dtype=torch.int32),
        "i64": torch.tensor([1, 2]),
        "f16": torch.tensor([1.0, 2.0], dtype=torch.float16),
        "f32": torch.tensor([1.0, 2.0]),
        "f64": torch.tensor([1.0, 2.0], dtype=torch.float64),
        "f64_0d": torch.tensor(2.0, dtype=torch.float64),
        "int": 2,
        "float": 1.5,
        "bool": True,
    }[kind]


PROMOTION = [  # (a, b, result): PyTorch's rules, 0-dim tensors and Python numbers included
    ("i64", "f32", "float32"), ("i64", "float", "float32"), ("i64", "int", "int64"),
    ("f32", "f64", "float64"), ("b", "b", "bool"), ("b", "int", "int64"),
    ("f32", "f64_0d", "float32"),  # a 0-dim tensor does not widen a dimensioned one
    ("f16", "f32", "float32"), ("f16", "float", "float16"), ("i32", "i64", "int64"),
    ("u8", "i8", "int16"), ("i32", "f16", "float16"), ("b", "float", "float32"),
    ("u8", "int", "uint8"), ("f16", "bool", "float16"),
]


@pytest.mark.parametrize("a,b,result", PROMOTION, ids=[f"{a}+{b}" for a, b, _ in PROMOTION])
def test_type_promotion(a, b, result):
    assert (_t(a) + _t(b)).dtype.name == result
    if isinstance(_t(a), torch.Tensor) and isinstance(_t(b), torch.Tensor):
        assert torch.result_type(_t(a), _t(b)).name == result


@pytest.mark.parametrize("a,b,result", PROMOTION, ids=[f"{a}+{b}" for a, b, _ in PROMOTION])
def test_type_promotion_matches_pytorch(a, b, result, torch_ref):
    def theirs(k):
        v = _t(k)
        return torch_ref.tensor(v.tolist(), dtype=getattr(torch_ref, v.dtype.name)) \
            if isinstance(v, torch.Tensor) else v
    assert str((theirs(a) + theirs(b)).dtype) == f"torch.{result}"


def test_division_of_integers_is_true_division():
    i = torch.tensor([1, 2])
    assert (i / i).dtype is torch.float32 and (i / 2).tolist() == [0.5, 1.0]


def test_promote_types():
    assert torch.promote_types(torch.int32, torch.float16) is torch.float16
    assert torch.promote_types(torch.uint8, torch.int8) is torch.int16


# ----------------------------------------------------------------------------- devices
def test_cpu_device():
    x = torch.tensor([1.0])
    assert x.device == torch.device("cpu") and str(x.device) == "cpu"
    assert repr(x.device) == "device(type='cpu')" and not x.is_cuda
    assert x.to("cpu") is x and x.cpu() is x


def test_device_objects():
    d = torch.device("cuda:1")
    assert (d.type, d.index, str(d)) == ("cuda", 1, "cuda:1")
    assert repr(torch.device("cuda", 0)) == "device(type='cuda', index=0)"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        torch.device("tpu")


@pytest.mark.skipif(bool(_device._gpus()), reason="a GPU is visible")
def test_cuda_queries_without_a_gpu():
    assert torch.cuda.is_available() is False and torch.cuda.device_count() == 0


@pytest.mark.gpu
@pytest.mark.skipif(not _device._gpus(), reason="needs a GPU visible to jax")
def test_to_cuda_and_back_keeps_gradients():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.is_cuda and y.device.type == "cuda" and y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert x.grad.device.type == "cpu" and x.grad.tolist() == [2.0, 4.0]


# ----------------------------------------------------------------------------- repr
@pytest.mark.parametrize("make,text", [
    (lambda: torch.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    (lambda: torch.tensor([1, 2]), "tensor([1, 2])"),
    (lambda: torch.tensor(3.5), "tensor(3.5000)"),
    (lambda: torch.tensor([1, 2], dtype=torch.int32), "tensor([1, 2], dtype=tracegrad.int32)"),
    (lambda: torch.tensor([1.0], dtype=torch.float64), "tensor([1.], dtype=tracegrad.float64)"),
    (lambda: torch.tensor([1.0, 2.0], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
    (lambda: torch.tensor([1.0, 2.0], requires_grad=True) * 2,
     "tensor([2., 4.], grad_fn=<MulBackward0>)"),
    (lambda: torch.zeros(2, 2), "tensor([[0., 0.],\n        [0., 0.]])"),
    (lambda: torch.tensor([1e-5, 1e5]), "tensor([1.0000e-05, 1.0000e+05])"),
    (lambda: torch.tensor([True, False]), "tensor([ True, False])"),
])
def test_repr(make, text):
    assert repr(make()) == text == str(make())


def test_repr_matches_pytorch_apart_from_the_module_name(torch_ref):
    cases = [lambda t: t.tensor([[1.5, -2.25], [1e-3, 100.0]]), lambda t: t.arange(12).reshape(3, 4),
             lambda t: t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True) ** 2,
             lambda t: t.tensor([0.1, 0.2], dtype=t.float16)]
    for make in cases:
        assert repr(make(torch)) == repr(make(torch_ref)).replace("torch.", "tracegrad.")


# ----------------------------------------------------------------------------- conversions
def test_item_tolist_and_python_numbers():
    assert torch.tensor(2.5).item() == 2.5 and isinstance(torch.tensor(2).item(), int)
    assert torch.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert float(torch.tensor(2.5)) == 2.5 and int(torch.tensor(3)) == 3
    assert bool(torch.tensor(1.0)) and not bool(torch.tensor(0.0))
    assert [1, 2, 3][torch.tensor(1)] == 2  # __index__
    assert f"{torch.tensor(2.0):.2f}" == "2.00"
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(torch.tensor([1.0, 2.0]))


def test_numpy_round_trip():
    x = torch.tensor([1.0, 2.0])
    a = x.numpy()
    assert a.dtype == np.float32 and a.tolist() == [1.0, 2.0]
    assert np.asarray(x).dtype == np.float32
    assert torch.from_numpy(np.array([1.0, 2.0])).dtype is torch.float64
    assert torch.tensor(np.float32(1.5)).dtype is torch.float32
    assert (np.float64(2.0) * x).dtype is torch.float32  # numpy scalars defer to Tensor


def test_numpy_and_from_numpy_copy():
    # JAX arrays are immutable: numpy() gives a read-only array and from_numpy() a copy
    # (PyTorch shares memory in both directions; see docs/tensors.md)
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[0] = 5.0
    n = np.array([1.0, 2.0])
    t = torch.from_numpy(n)
    n[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


def test_to_and_type_conversions():
    f = torch.tensor([1.5, 2.5])
    assert f.to(torch.float32) is f
    assert f.double().dtype is torch.float64 and f.to(torch.float64).dtype is torch.float64
    assert f.long().tolist() == [1, 2] and f.int().dtype is torch.int32
    assert f.bool().dtype is torch.bool and f.half().dtype is torch.float16
    assert f.type() == "tracegrad.FloatTensor" and f.long().type() == "tracegrad.LongTensor"
    assert f.type(torch.float64).dtype is torch.float64
    assert f.to(torch.tensor([1], dtype=torch.int32)).dtype is torch.int32  # to(other)
    assert f.to(dtype=torch.float64, copy=True).dtype is torch.float64


def test_shape_facts():
    x = torch.zeros(2, 3)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert repr(x.shape) == "tracegrad.Size([2, 3])"
    assert (x.dim(), x.ndim, x.numel(), len(x)) == (2, 2, 6, 2)
    assert x.T.shape == x.t().shape == x.mT.shape == (3, 2)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(torch.tensor(1.0))


# ----------------------------------------------------------------------------- in-place ops
def test_in_place_arithmetic_returns_self_and_bumps_the_version():
    x = torch.ones(3)
    y = x
    x += 1
    x *= 3
    x -= 1
    x /= 5
    assert x is y and x.tolist() == [1.0, 1.0, 1.0] and x._version == 4
    assert x.add_(1) is x and x.mul_(torch.tensor([1.0, 2.0, 3.0])) is x
    assert x.tolist() == [2.0, 4.0, 6.0] and x._version == 6


def test_in_place_fill_zero_clamp_copy():
    x = torch.tensor([-1.0, 0.5, 2.0])
    x.clamp_(0, 1)
    assert x.tolist() == [0.0, 0.5, 1.0]
    x.fill_(2)
    assert x.tolist() == [2.0] * 3
    x.zero_()
    assert x.tolist() == [0.0] * 3
    x.copy_(torch.tensor([3, 4, 5]))  # casts to x's dtype
    assert x.tolist() == [3.0, 4.0, 5.0] and x.dtype is torch.float32
    x.copy_(torch.tensor(7.0))  # broadcasts
    assert x.tolist() == [7.0] * 3 and x._version == 5


def test_in_place_keeps_the_dtype_or_refuses():
    i = torch.tensor([1, 2])
    i.add_(1)
    assert i.dtype is torch.int64 and i.tolist() == [2, 3]
    f = torch.tensor([1.0, 2.0])
    f.add_(torch.tensor([1.0, 1.0], dtype=torch.float64))  # float64 result cast back to float32
    assert f.dtype is torch.float32
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output "
                                           "type Long"):
        i.mul_(1.5)
    assert i.tolist() == [2, 3]


def test_setitem_writes_in_place():
    x = torch.zeros(2, 3)
    x[0] = 1.0
    x[1, 1:] = torch.tensor([5.0, 6.0])
    x[x > 5] = -1.0
    assert x.tolist() == [[1.0, 1.0, 1.0], [0.0, 5.0, -1.0]] and x._version == 3


# ----------------------------------------------------------------------------- views
def test_views_have_the_right_values():
    x = torch.arange(6.0).reshape(2, 3)
    assert x.view(3, 2).tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert x[:, 1].tolist() == [1.0, 4.0] and x.t()[2].tolist() == [2.0, 5.0]
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.flatten().shape == (6,)
    assert x.expand(2, 2, 3).shape == (2, 2, 3) and x.contiguous() is x and x.is_contiguous()


def test_writes_to_reshape_or_slice_results_reach_the_base():
    # views share their base's storage, as PyTorch's (more in tests/test_views.py)
    x = torch.zeros(2, 3)
    v = x.view(6)
    v[0] = 5.0
    s = x[1]
    s.add_(1)
    assert x.tolist() == [[5.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    assert v.tolist() == [5.0, 0, 0, 1, 1, 1] and s.tolist() == [1.0] * 3
    d = x.detach()
    d[0, 0] = 7.0
    assert x[0, 0].item() == 7.0 and v[0].item() == 7.0


def test_views_in_pytorch_do_alias(torch_ref):
    x = torch_ref.zeros(2, 3)
    x.view(6)[0] = 5.0
    assert x[0, 0].item() == 5.0


def test_gradients_flow_through_views():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.view(6)[1:4].reshape(3, 1) * torch.tensor([[1.0], [2.0], [3.0]])
    y.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]]
