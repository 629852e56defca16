"""Tests for tracegrad._creation.checks: the argument checks every creation function shares
(requires_grad, size forms, dtype/device/size errors)."""
import numpy as np
import pytest

from tracegrad import _creation as C
from tracegrad import _dtype as D
from tracegrad._tensor import Size


def val(t):
    """The tensor's value as a numpy array (no autograd checks)."""
    return np.asarray(t._data.value)


# ------------------------------------------------------------------------- leaves & flags
@pytest.mark.parametrize("make", [
    lambda: C.tensor([1.0, 2.0], requires_grad=True),
    lambda: C.zeros(2, 3, requires_grad=True),
    lambda: C.ones((2,), requires_grad=True),
    lambda: C.empty(2, requires_grad=True),
    lambda: C.full((2,), 1.5, requires_grad=True),
    lambda: C.arange(0.0, 3.0, requires_grad=True),
    lambda: C.linspace(0, 1, 4, requires_grad=True),
    lambda: C.eye(3, requires_grad=True),
    lambda: C.randn(2, requires_grad=True),
    lambda: C.rand(2, requires_grad=True),
    lambda: C.zeros_like(C.ones(2), requires_grad=True),
    lambda: C.randn_like(C.ones(2), requires_grad=True),
])
def test_requires_grad_leaf(make):
    t = make()
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad_fn is None
    assert t.grad is None


def test_default_not_requires_grad():
    for t in (C.tensor([1.0]), C.zeros(2), C.randn(2), C.arange(3)):
        assert not t.requires_grad and t.is_leaf and t.grad_fn is None


@pytest.mark.parametrize("make", [
    lambda: C.zeros(2, dtype=D.int64, requires_grad=True),
    lambda: C.arange(3, requires_grad=True),
    lambda: C.full((2,), 1, requires_grad=True),
    lambda: C.randint(0, 3, (2,), requires_grad=True),
    lambda: C.randperm(3, requires_grad=True),
    lambda: C.eye(2, dtype=D.bool, requires_grad=True),
])
def test_requires_grad_non_float_raises(make):
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        make()


# ------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("fn", [C.zeros, C.ones, C.empty, C.randn, C.rand])
def test_size_forms(fn):
    for args, kw in [((2, 3), {}), (((2, 3),), {}), (([2, 3],), {}), ((Size([2, 3]),), {}),
                     ((), {"size": (2, 3)}), ((np.int64(2), 3), {})]:
        t = fn(*args, **kw)
        assert tuple(t.shape) == (2, 3) and t.dtype is D.float32
    assert tuple(fn([]).shape) == ()
    assert tuple(fn(()).shape) == ()
    assert tuple(fn(0, 3).shape) == (0, 3)
    assert tuple(fn(C.tensor(2), 1).shape) == (2, 1)


@pytest.mark.parametrize("fn", [C.zeros, C.ones, C.empty, C.randn, C.rand])
def test_size_errors(fn):
    name = fn.__name__
    with pytest.raises(RuntimeError, match=r"Trying to create tensor with negative dimension "
                                           r"-1: \[-1, 2\]"):
        fn(-1, 2)
    with pytest.raises(RuntimeError, match=r"negative dimension -3: \[2, -3\]"):
        fn((2, -3))
    with pytest.raises(TypeError, match=rf"{name}\(\): argument 'size' .*must be tuple of ints"):
        fn(2, 3.0)
    with pytest.raises(TypeError, match=rf"{name}\(\): argument 'size' .*must be tuple of ints"):
        fn("a")
    with pytest.raises(TypeError, match=rf'{name}\(\) missing 1 required positional arguments'):
        fn()
    with pytest.raises(TypeError, match="argument 'dtype' must be torch.dtype, not str"):
        fn(2, dtype="float32")
    with pytest.raises(TypeError, match="argument 'device' must be torch.device, not float"):
        fn(2, device=1.5)
    with pytest.raises(TypeError, match="argument 'requires_grad' must be bool, not int"):
        fn(2, requires_grad=1)
