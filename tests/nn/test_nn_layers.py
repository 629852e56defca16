"""Layers and containers: shapes, PyTorch's initialisation ranges, reproducibility,
Sequential/ModuleList behaviour, and Linear against torch with the weights copied across."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("shape", [(6,), (4, 6), (2, 3, 6)])
def test_linear_shapes(shape):
    lin = nn.Linear(6, 5)
    assert lin.weight.shape == (5, 6) and lin.bias.shape == (5,)
    assert lin(torch.randn(*shape)).shape == shape[:-1] + (5,)


def test_linear_without_bias():
    lin = nn.Linear(3, 2, bias=False)
    assert lin.bias is None and len(list(lin.parameters())) == 1
    x = torch.randn(4, 3)
    assert np.allclose(_np(lin(x)), _np(x) @ _np(lin.weight).T, atol=1e-6)
    assert repr(lin) == "Linear(in_features=3, out_features=2, bias=False)"


@pytest.mark.parametrize("fan_in", [1, 16, 300])
def test_linear_init_ranges_follow_pytorch(fan_in):
    # kaiming_uniform(a=sqrt(5)) and the bias rule both give U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    torch.manual_seed(0)
    lin = nn.Linear(fan_in, 200)
    bound = 1 / math.sqrt(fan_in)
    w, b = _np(lin.weight), _np(lin.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # and the samples fill the range (not, say, a normal or a narrower uniform)
    assert np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_linear_init_is_reproducible_with_manual_seed():
    torch.manual_seed(123)
    a = nn.Linear(4, 3)
    torch.manual_seed(123)
    b = nn.Linear(4, 3)
    c = nn.Linear(4, 3)
    assert np.array_equal(_np(a.weight), _np(b.weight))
    assert np.array_equal(_np(a.bias), _np(b.bias))
    assert not np.array_equal(_np(b.weight), _np(c.weight))


def test_linear_dtype_argument():
    lin = nn.Linear(2, 2, dtype=torch.float64)
    assert lin.weight.dtype is torch.float64 and lin.bias.dtype is torch.float64


def test_linear_init_does_not_leave_history():
    lin = nn.Linear(3, 3)
    assert lin.weight.is_leaf and lin.weight.grad_fn is None and lin.weight.grad is None


def test_linear_matches_torch_with_copied_weights():
    T = pytest.importorskip("torch")
    ours = nn.Linear(5, 4)
    theirs = T.nn.Linear(5, 4)
    with T.no_grad():
        theirs.weight.copy_(T.tensor(_np(ours.weight)))
        theirs.bias.copy_(T.tensor(_np(ours.bias)))
    xn = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    x = torch.tensor(xn, requires_grad=True)
    tx = T.tensor(xn, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert np.allclose(_np(y), ty.detach().numpy(), atol=1e-6)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for a, b in [(x.grad, tx.grad), (ours.weight.grad, theirs.weight.grad),
                 (ours.bias.grad, theirs.bias.grad)]:
        assert np.allclose(_np(a), b.numpy(), atol=1e-5)


def test_activation_modules():
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert nn.ReLU()(x).tolist() == [0.0, 0.5, 2.0]
    assert np.allclose(_np(nn.Tanh()(x)), np.tanh(_np(x)))
    assert np.allclose(_np(nn.Sigmoid()(x)), 1 / (1 + np.exp(-_np(x))))
    assert nn.Identity(3, foo=1)(x) is x
    assert np.allclose(_np(nn.Softmax(dim=0)(x)).sum(), 1.0)
    assert nn.Flatten()(torch.zeros(2, 3, 4)).shape == (2, 12)
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


def test_relu_inplace_module_changes_its_input():
    x = torch.tensor([-1.0, 2.0])
    y = x * 1
    out = nn.ReLU(inplace=True)(y)
    assert out is y and y.tolist() == [0.0, 2.0]


def test_sequential_container():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    assert seq(torch.randn(5, 3)).shape == (5, 2)
    seq.append(nn.Tanh())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Tanh"]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        seq[3]
    named = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["a.weight", "a.bias"]


def test_module_list_registers_its_items():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(layers.parameters())) == 6
    assert isinstance(layers[1], nn.Linear) and len(layers[1:]) == 2


def test_tracegrad_nn_is_the_nn_package():
    # the fused ops live in tracegrad.ops.nn_ops; nothing may shadow tracegrad.nn
    assert torch.nn.Module is nn.Module and torch.nn.__name__ == "tracegrad.nn"


@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_grad_fn_names_match_torch(shape, bias):
    T = pytest.importorskip("torch")
    ours = nn.Linear(3, 2, bias=bias)
    theirs = T.nn.Linear(3, 2, bias=bias)
    assert (ours(torch.randn(*shape)).grad_fn.name()
            == theirs(T.randn(*shape)).grad_fn.name())


def test_linear_shape_error_reads_like_pytorch():
    T = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as ours:
        nn.Linear(4, 5)(torch.randn(2, 3, 3))
    with pytest.raises(RuntimeError) as theirs:
        T.nn.Linear(4, 5)(T.randn(2, 3, 3))
    assert str(ours.value) == str(theirs.value)


def test_linear_second_derivatives_match_torch():
    # create_graph through the fused op: d/dW of |dL/dx|^2, against torch
    T = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    xn = rng.standard_normal((4, 3))
    wn = rng.standard_normal((5, 3))
    bn = rng.standard_normal(5)
    res = []
    for lib, F in ((torch, nn.functional), (T, T.nn.functional)):
        x = lib.tensor(xn, requires_grad=True)
        w = lib.tensor(wn, requires_grad=True)
        b = lib.tensor(bn, requires_grad=True)
        y = lib.tanh(F.linear(x, w, b)).sum()
        (gx,) = lib.autograd.grad(y, x, create_graph=True)
        gw, gb = lib.autograd.grad((gx * gx).sum(), (w, b))
        res.append((gw.detach().numpy(), gb.detach().numpy()))
    assert np.allclose(res[0][0], res[1][0], atol=1e-10)
    assert np.allclose(res[0][1], res[1][1], atol=1e-10)
