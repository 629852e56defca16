"""Tests for tracegrad._creation: dtype inference, shapes, values, random generators, errors."""
import math
import warnings

import jax
import numpy as np
import pytest

from tracegrad import _creation as C
from tracegrad import _dtype as D
from tracegrad._device import cuda
from tracegrad._tensor import Size, Tensor


def val(t):
    """The tensor's value as a numpy array (no autograd checks)."""
    return np.asarray(t._data.value)


# ------------------------------------------------------------------------- dtype inference
@pytest.mark.parametrize("data, dtype, shape", [
    (1.5, D.float32, ()),
    (3, D.int64, ()),
    (True, D.bool, ()),
    ([1, 2], D.int64, (2,)),
    ([1.0, 2.0], D.float32, (2,)),
    ([1, 2.5], D.float32, (2,)),
    ([True, False], D.bool, (2,)),
    ([True, 2], D.int64, (2,)),
    ([True, 2.0], D.float32, (2,)),
    ([[1, 2], [3, 4]], D.int64, (2, 2)),
    ((1, 2, 3), D.int64, (3,)),
    (range(4), D.int64, (4,)),
    ([], D.float32, (0,)),
    ([[]], D.float32, (1, 0)),
    ([[], []], D.float32, (2, 0)),
    (np.array([1.0, 2.0]), D.float64, (2,)),
    (np.array([1.0], dtype=np.float32), D.float32, (1,)),
    (np.array([1, 2], dtype=np.int32), D.int32, (2,)),
    (np.array([1, 2]), D.int64, (2,)),
    (np.array([1, 2], dtype=np.uint8), D.uint8, (2,)),
    (np.array([True]), D.bool, (1,)),
    (np.array(3.0), D.float64, ()),
    (np.float64(2.0), D.float64, ()),
    (np.int32(2), D.int32, ()),
    ([np.float64(1.0), 2.0], D.float64, (2,)),
    ([np.float32(1.0), 2], D.float32, (2,)),
    ([np.int32(1), 2], D.int64, (2,)),
    ([np.float16(1.0), np.int64(2)], D.float16, (2,)),
    ([np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)], D.int32, (2, 2)),
    (jax.numpy.arange(3, dtype=np.int32), D.int32, (3,)),
])
def test_tensor_dtype_inference(data, dtype, shape):
    t = C.tensor(data)
    assert isinstance(t, Tensor)
    assert t.dtype is dtype
    assert tuple(t.shape) == shape
    assert val(t).dtype == dtype.np


def test_tensor_values_and_explicit_dtype():
    np.testing.assert_array_equal(val(C.tensor([[1, 2], [3, 4]])), [[1, 2], [3, 4]])
    assert val(C.tensor([1.7, -1.7], dtype=D.int64)).tolist() == [1, -1]   # truncation
    assert val(C.tensor([-1], dtype=D.uint8)).tolist() == [255]            # wraps
    assert val(C.tensor([2, 0], dtype=D.bool)).tolist() == [True, False]
    assert C.tensor([1, 2], dtype=D.float16).dtype is D.float16
    assert C.tensor([1, 2], dtype=D.bfloat16).dtype is D.bfloat16
    assert C.tensor(0.1).item() == np.float32(0.1)  # rounded once from the double
    # Python types are accepted as dtypes, as in torch (float means float64)
    assert C.tensor([1], dtype=float).dtype is D.float64
    assert C.tensor([1.5], dtype=int).dtype is D.int64
    assert C.tensor([1], dtype=bool).dtype is D.bool


def test_tensor_default_dtype_follows_set_default_dtype():
    D.set_default_dtype(D.float64)
    try:
        assert C.tensor([1.0]).dtype is D.float64
        assert C.zeros(2).dtype is D.float64
        assert C.arange(0.0, 1.0, 0.5).dtype is D.float64
        assert C.tensor([1]).dtype is D.int64
    finally:
        D.set_default_dtype(D.float32)
    assert C.tensor([1.0]).dtype is D.float32


def test_tensor_from_list_of_scalar_tensors():
    t = C.tensor([C.tensor(1), 2.5])
    assert t.dtype is D.float32 and val(t).tolist() == [1.0, 2.5]
    t = C.tensor([C.tensor([1.0]), C.tensor([3.0])])   # one-element tensors count as scalars
    assert tuple(t.shape) == (2,)
    t = C.tensor([C.tensor(1, dtype=D.int32), C.tensor(2, dtype=D.int32)])
    assert t.dtype is D.int32
    assert C.tensor([C.tensor(1.0, dtype=D.float64), 2.0]).dtype is D.float64
    with pytest.raises(ValueError, match="only one element tensors"):
        C.tensor([C.tensor([1.0, 2.0]), C.tensor([3.0, 4.0])])


def test_tensor_copy_construct_warns_and_copies():
    src = C.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match=r"To copy construct from a tensor, it is recommended to "
                                         r"use sourceTensor\.clone\(\)\.detach\(\)"):
        t = C.tensor(src)
    assert t is not src and t._data is not src._data
    assert not t.requires_grad and t.is_leaf
    assert val(t).tolist() == [1.0, 2.0]
    with pytest.warns(UserWarning):
        t = C.tensor(src, dtype=D.float64, requires_grad=True)
    assert t.dtype is D.float64 and t.requires_grad and t.is_leaf


def test_tensor_does_not_alias_numpy():
    a = np.arange(4, dtype=np.float32)
    t = C.tensor(a)
    u = C.from_numpy(a)
    v = C.as_tensor(a)
    a[0] = 99
    for x in (t, u, v):
        assert val(x)[0] == 0


def test_from_numpy_and_as_tensor():
    t = C.from_numpy(np.array([1, 2], dtype=np.int16))
    assert t.dtype is D.int16 and t.device.type == "cpu"
    assert C.from_numpy(np.zeros((2, 3))).dtype is D.float64
    with pytest.raises(TypeError, match=r"expected np.ndarray \(got list\)"):
        C.from_numpy([1, 2])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type numpy.uint16"):
        C.from_numpy(np.array([1], dtype=np.uint16))
    x = C.tensor([1.0, 2.0], requires_grad=True)
    assert C.as_tensor(x) is x
    assert C.as_tensor(x, dtype=D.float32, device="cpu") is x
    assert C.as_tensor([1, 2]).dtype is D.int64
    assert C.as_tensor([1, 2], dtype=D.float32).dtype is D.float32
    y = C.as_tensor(x, dtype=D.float64)
    assert y.dtype is D.float64 and y.requires_grad and not y.is_leaf


def test_tensor_errors():
    with pytest.raises(ValueError, match=r"expected sequence of length 2 at dim 1 \(got 3\)"):
        C.tensor([[1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match=r"expected sequence of length 2 at dim 1 \(got 1\)"):
        C.tensor([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"expected sequence of length 0 at dim 1 \(got 1\)"):
        C.tensor([[], [1]])
    with pytest.raises(TypeError):
        C.tensor([[1, 2], 3])
    with pytest.raises(TypeError):
        C.tensor([1, [2, 3]])
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype "
                                           "can require gradients"):
        C.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        C.tensor([None])
    with pytest.raises(RuntimeError, match="Could not infer dtype of set"):
        C.tensor({1, 2})
    with pytest.raises(TypeError, match="invalid data type 'str'"):
        C.tensor("abc")
    with pytest.raises(ValueError, match="too many dimensions 'str'"):
        C.tensor(["a"])
    with pytest.raises(ValueError, match="Overflow when unpacking long"):
        C.tensor([2 ** 63])
    with pytest.raises(TypeError, match="argument 'dtype' must be torch.dtype, not str"):
        C.tensor([1.0], dtype="float32")
    with pytest.raises(TypeError, match="argument 'dtype' must be torch.dtype, not type"):
        C.tensor([1.0], dtype=np.float32)
    with pytest.raises(TypeError, match="argument 'requires_grad' must be bool, not int"):
        C.tensor([1.0], requires_grad=1)
    with pytest.raises(TypeError, match="complex"):
        C.tensor(1 + 2j)


@pytest.mark.parametrize("data, dtype", [
    ([-1, 300], D.uint8), ([300], D.int8), ([-129], D.int8), ([-256], D.uint8),
    ([300.5], D.uint8), ([-1.5], D.uint8), ([float("inf")], D.int64), ([float("nan")], D.int32),
    ([2 ** 40], D.int32), (300, D.uint8),
])
def test_tensor_overflow_raises(data, dtype):
    with pytest.raises(RuntimeError, match=f"value cannot be converted to type {dtype.name} "
                                           "without overflow"):
        C.tensor(data, dtype=dtype)


def test_tensor_conversions_that_do_not_raise():
    assert val(C.tensor([-255], dtype=D.uint8)).tolist() == [1]      # negatives wrap
    assert val(C.tensor([1e10], dtype=D.float16)).tolist() == [float("inf")]
    assert val(C.tensor([2 ** 40], dtype=D.float16)).tolist() == [float("inf")]
    assert val(C.tensor(2, dtype=D.bool)).tolist() is True
    assert val(C.full((1,), -1, dtype=D.uint8)).tolist() == [255]
    assert val(C.full((1,), 1e10, dtype=D.float16)).tolist() == [float("inf")]


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


def test_zeros_ones_empty_values():
    assert val(C.zeros(2, 3)).tolist() == [[0.0] * 3] * 2
    assert val(C.ones(2, dtype=D.int64)).tolist() == [1, 1]
    assert C.ones(2, dtype=D.int64).dtype is D.int64
    assert val(C.ones(2, 3, dtype=D.bool)).all()
    assert C.empty(4, dtype=D.float16).dtype is D.float16
    big = C.ones(600, 600, dtype=D.int32)  # the on-device fill path
    assert big.dtype is D.int32 and int(val(big).sum()) == 360000
    assert int(val(C.zeros(600, 600)).sum()) == 0


def test_like_functions():
    x = C.tensor([[1, 2, 3]], dtype=D.int32)
    for fn, v in ((C.zeros_like, 0), (C.ones_like, 1), (C.empty_like, None)):
        t = fn(x)
        assert t.dtype is D.int32 and tuple(t.shape) == (1, 3) and t.device == x.device
        if v is not None:
            assert (val(t) == v).all()
    assert C.zeros_like(x, dtype=D.float64).dtype is D.float64
    t = C.full_like(x, 2.7)        # dtype is the input's, not inferred from the value
    assert t.dtype is D.int32 and val(t).tolist() == [[2, 2, 2]]
    f = C.ones(2, 2, dtype=D.float64)
    assert C.rand_like(f).dtype is D.float64
    assert C.randn_like(f).dtype is D.float64 and tuple(C.randn_like(f).shape) == (2, 2)
    r = C.randint_like(f, 5)
    assert r.dtype is D.float64 and ((val(r) >= 0) & (val(r) < 5)).all()
    r = C.randint_like(x, 3, 5)
    assert r.dtype is D.int32 and ((val(r) >= 3) & (val(r) < 5)).all()
    with pytest.raises(TypeError, match=r"zeros_like\(\): argument 'input' \(position 1\) must "
                                        r"be Tensor, not list"):
        C.zeros_like([1, 2])
    with pytest.raises(NotImplementedError, match="not implemented for 'Int'"):
        C.rand_like(x)
    with pytest.raises(NotImplementedError, match="not implemented for 'Int'"):
        C.randn_like(x)


# ------------------------------------------------------------------------- full
def test_full():
    assert C.full((2,), 1).dtype is D.int64
    assert C.full((2,), True).dtype is D.bool
    assert C.full((2,), 1.5).dtype is D.float32
    assert C.full((2,), np.float64(1.5)).dtype is D.float32
    assert C.full((2,), C.tensor(3)).dtype is D.int64
    assert C.full((2, 2), 1.5, dtype=D.float64).dtype is D.float64
    assert val(C.full((2, 3), 7)).tolist() == [[7] * 3] * 2
    assert val(C.full((2,), 1.5, dtype=D.int64)).tolist() == [1, 1]
    assert val(C.full([3], -1, dtype=D.int8)).tolist() == [-1, -1, -1]
    assert math.copysign(1.0, val(C.full((1,), -0.0))[0]) == -1.0
    assert math.isnan(val(C.full((1,), float("nan")))[0])
    with pytest.raises(TypeError, match=r"full\(\): argument 'size' \(position 1\) must be "
                                        r"tuple of ints, not int"):
        C.full(2, 1.5)
    with pytest.raises(TypeError, match=r"argument 'fill_value' \(position 2\) must be Number, "
                                        r"not str"):
        C.full((2,), "a")
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8_t without "
                                           "overflow"):
        C.full((2,), 300, dtype=D.uint8)
    with pytest.raises(RuntimeError, match="value cannot be converted to type int8_t without "
                                           "overflow"):
        C.full((2,), 2.0 ** 10, dtype=D.int8)
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension"):
        C.full((-1,), 1.0)


# ------------------------------------------------------------------------- arange
@pytest.mark.parametrize("args, kw, dtype, expected", [
    ((5,), {}, D.int64, [0, 1, 2, 3, 4]),
    ((5.0,), {}, D.float32, [0, 1, 2, 3, 4]),
    ((1, 4), {}, D.int64, [1, 2, 3]),
    ((10, 0, -3), {}, D.int64, [10, 7, 4, 1]),
    ((0, 1, 0.25), {}, D.float32, [0, 0.25, 0.5, 0.75]),
    ((0, 2.0), {}, D.float32, [0, 1]),
    ((3, 3), {}, D.int64, []),
    ((True,), {}, D.int64, [0]),
    ((0, 5), {"dtype": D.uint8}, D.uint8, [0, 1, 2, 3, 4]),
    ((0, 5), {"dtype": D.float64}, D.float64, [0, 1, 2, 3, 4]),
    ((0.5, 3, 1), {"dtype": D.int64}, D.int64, [0, 1, 2]),
    ((0, C.tensor(3)), {}, D.int64, [0, 1, 2]),
    ((0, C.tensor(3.0)), {}, D.float32, [0, 1, 2]),
    ((), {"end": 3}, D.int64, [0, 1, 2]),
    ((), {"start": 1, "end": 3}, D.int64, [1, 2]),
])
def test_arange(args, kw, dtype, expected):
    t = C.arange(*args, **kw)
    assert t.dtype is dtype
    np.testing.assert_allclose(val(t).astype(np.float64), expected)


def test_arange_float_values():
    t = C.arange(0, 1, 0.1)
    assert tuple(t.shape) == (10,)
    np.testing.assert_array_equal(val(t), (np.arange(10) * 0.1).astype(np.float32))
    assert tuple(C.arange(-3.5, 7.25, 0.75).shape) == (15,)
    assert tuple(C.arange(1e6, 1e6 + 100, 0.7).shape) == (143,)


def test_arange_errors():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        C.arange(0, 10, 0)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step "
                                           "sign"):
        C.arange(0, 10, -1)
    with pytest.raises(RuntimeError, match="unsupported range"):
        C.arange(float("inf"))
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        C.arange(5, dtype=D.bool)
    with pytest.raises(TypeError, match=r"arange\(\): argument 'end' \(position 1\) must be "
                                        r"Number, not str"):
        C.arange("a")


# ------------------------------------------------------------------------- linspace / eye
def test_linspace():
    t = C.linspace(0, 1, 5)
    assert t.dtype is D.float32 and val(t).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert val(C.linspace(0, 10, 5, dtype=D.int64)).tolist() == [0, 2, 5, 7, 10]
    assert val(C.linspace(0, 1, 1)).tolist() == [0.0]
    assert tuple(C.linspace(0, 1, 0).shape) == (0,)
    t = C.linspace(-2.5, 7.3, 11, dtype=D.float64)
    assert t.dtype is D.float64
    np.testing.assert_allclose(val(t), np.linspace(-2.5, 7.3, 11), rtol=1e-15)
    assert val(t)[0] == -2.5 and val(t)[-1] == 7.3   # both ends exact
    t = C.linspace(-5, 5, 1000)
    np.testing.assert_allclose(val(t), np.linspace(-5, 5, 1000), rtol=0, atol=1e-6)
    assert val(C.linspace(C.tensor(0.0), 1, 3)).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        C.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="argument 'steps' .*must be int, not float"):
        C.linspace(0, 1, 2.5)
    with pytest.raises(RuntimeError, match="without overflow"):
        C.linspace(-2.5, 7.3, 11, dtype=D.uint8)


def test_eye():
    t = C.eye(3)
    assert t.dtype is D.float32 and (val(t) == np.eye(3)).all()
    t = C.eye(2, 3, dtype=D.int64)
    assert t.dtype is D.int64 and val(t).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert tuple(C.eye(0).shape) == (0, 0)
    assert tuple(C.eye(3, 0).shape) == (3, 0)
    assert (val(C.eye(600)) == np.eye(600)).all()   # the on-device path
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0, got -1"):
        C.eye(-1)
    with pytest.raises(RuntimeError, match="m must be greater or equal to 0, got -1"):
        C.eye(2, -1)
    with pytest.raises(TypeError, match=r"eye\(\): argument 'n' \(position 1\) must be int, "
                                        r"not float"):
        C.eye(2.0)


# ------------------------------------------------------------------------- random
def test_manual_seed_reproduces_sequence():
    C.manual_seed(0)
    a, b, r = C.randn(3, 4), C.randn(3, 4), C.rand(5)
    C.manual_seed(0)
    a2, b2, r2 = C.randn(3, 4), C.randn(3, 4), C.rand(5)
    assert (val(a) == val(a2)).all() and (val(b) == val(b2)).all() and (val(r) == val(r2)).all()
    assert not (val(a) == val(b)).all()          # successive calls differ
    C.manual_seed(1)
    assert not (val(C.randn(3, 4)) == val(a)).all()   # another seed differs
    assert C.initial_seed() == 1


def test_random_dtypes_and_ranges():
    C.manual_seed(123)
    assert C.randn(2).dtype is D.float32
    assert C.randn(2, dtype=D.float64).dtype is D.float64
    assert C.randn(2, dtype=D.bfloat16).dtype is D.bfloat16
    assert C.rand(2, dtype=D.float16).dtype is D.float16
    u = val(C.rand(10000))
    assert u.min() >= 0 and u.max() < 1 and 0.45 < u.mean() < 0.55
    n = val(C.randn(20000, dtype=D.float64))
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    with pytest.raises(NotImplementedError, match="\"normal_kernel_cpu\" not implemented for "
                                                  "'Long'"):
        C.randn(2, dtype=D.int64)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        C.rand(2, dtype=D.int64)


def test_randint():
    r = C.randint(-3, 4, (10000,))
    v = val(r)
    assert r.dtype is D.int64 and v.min() == -3 and v.max() == 3
    assert set(v.tolist()) == set(range(-3, 4))
    r = C.randint(5, (2, 3))
    assert tuple(r.shape) == (2, 3) and ((val(r) >= 0) & (val(r) < 5)).all()
    assert C.randint(high=5, size=(3,)).dtype is D.int64
    assert C.randint(0, 10, size=(3,)).dtype is D.int64
    assert C.randint(0, 5, (3,), dtype=D.float32).dtype is D.float32
    assert C.randint(0, 256, (3,), dtype=D.uint8).dtype is D.uint8
    assert C.randint(0, 2, (3,), dtype=D.bool).dtype is D.bool
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to', but "
                                           "got from=5 >= to=5"):
        C.randint(5, 5, (3,))
    with pytest.raises(TypeError, match="argument 'size' .*must be tuple of ints, not int"):
        C.randint(5, 3)
    with pytest.raises(TypeError, match="argument 'high' .*must be int, not float"):
        C.randint(0, 5.5, (3,))
    with pytest.raises(RuntimeError, match="to - 1 is out of bounds"):
        C.randint(0, 257, (3,), dtype=D.uint8)
    with pytest.raises(RuntimeError, match="from is out of bounds"):
        C.randint(-1, 5, (3,), dtype=D.uint8)


def test_randperm():
    p = C.randperm(10)
    assert p.dtype is D.int64 and sorted(val(p).tolist()) == list(range(10))
    assert tuple(C.randperm(0).shape) == (0,)
    assert C.randperm(4, dtype=D.float32).dtype is D.float32
    with pytest.raises(RuntimeError, match=r"Trying to create tensor with negative dimension "
                                           r"-1: \[-1\]"):
        C.randperm(-1)
    with pytest.raises(TypeError, match=r"randperm\(\): argument 'n' \(position 1\) must be "
                                        r"int, not float"):
        C.randperm(4.0)


def test_generator():
    g = C.Generator()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    x = C.rand(4, generator=g)
    C.manual_seed(99)            # the global stream does not disturb g
    C.randn(10)
    g2 = C.Generator().manual_seed(5)
    assert (val(C.rand(4, generator=g2)) == val(x)).all()
    # state save/restore
    state = g.get_state()
    assert state.dtype is D.uint8
    y = C.randn(3, generator=g)
    g.set_state(state)
    assert (val(C.randn(3, generator=g)) == val(y)).all()
    # the generator argument is honoured by every random function
    for fn in (lambda gen: C.randint(0, 100, (5,), generator=gen),
               lambda gen: C.randperm(8, generator=gen),
               lambda gen: C.randn_like(C.ones(3), generator=gen),
               lambda gen: C.normal(0.0, 1.0, (3,), generator=gen)):
        a = fn(C.Generator().manual_seed(7))
        b = fn(C.Generator().manual_seed(7))
        assert (val(a) == val(b)).all()
    with pytest.raises(TypeError, match="argument 'generator' must be torch.Generator, not int"):
        C.randn(2, generator=3)
    with pytest.raises(RuntimeError, match="manual_seed expected a long, but got float"):
        C.Generator().manual_seed(1.5)
    with pytest.raises(ValueError, match="Overflow when unpacking long"):
        C.manual_seed(2 ** 64)


def test_global_seed_functions():
    assert C.manual_seed(7) is C.default_generator
    assert C.initial_seed() == 7
    C.manual_seed(-1)                            # negative seeds are remapped, as in torch
    assert C.initial_seed() == 0xFFFF_FFFF_FFFF_FFFF - 1
    C.manual_seed(2 ** 64 - 1)
    s = C.seed()
    assert isinstance(s, int) and C.initial_seed() == s
    state = C.get_rng_state()
    a = C.randn(3)
    C.set_rng_state(state)
    assert (val(C.randn(3)) == val(a)).all()
    C.manual_seed(0)


def test_random_inside_jit_does_not_leak_tracers():
    C.manual_seed(0)

    @jax.jit
    def f(x):
        return x + C.randn(2)._data.value

    f(np.zeros(2, np.float32))
    assert not isinstance(C.default_generator._key, jax.core.Tracer)
    C.randn(2)     # the generator still works


def test_normal():
    C.manual_seed(0)
    t = C.normal(2.0, 3.0, (2000,))
    assert t.dtype is D.float32 and abs(val(t).mean() - 2) < 0.3
    assert C.normal(2, 3, size=(2,)).dtype is D.float32
    assert C.normal(0.0, 1.0, (2,), dtype=D.float64).dtype is D.float64
    assert C.normal(C.zeros(2, dtype=D.float64), 1.0).dtype is D.float64
    assert tuple(C.normal(C.zeros(2, 1), C.ones(3)).shape) == (2, 3)
    s = C.normal(C.zeros(1000), C.zeros(1000))
    assert (val(s) == 0).all()
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        C.normal(0.0, 1.0)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
        C.normal(0.0, -1, (2,))
    with pytest.raises(RuntimeError, match="must match the size"):
        C.normal(C.zeros(2), C.ones(3))


def test_normal_gradient_is_zero():
    m = C.zeros(3, requires_grad=True)
    out = C.normal(m, 2.0)
    assert out.requires_grad and not out.is_leaf
    out.sum().backward()
    assert (val(m.grad) == 0).all()


# ------------------------------------------------------------------------- devices
def test_cpu_device_arguments():
    for d in (None, "cpu", C.CPU if hasattr(C, "CPU") else "cpu"):
        t = C.zeros(2, device=d)
        assert t.device.type == "cpu"
        assert next(iter(t._data.value.devices())).platform == "cpu"
    assert C.tensor([1.0], device="cpu").device.type == "cpu"
    assert C.randn(2, device="cpu").device.type == "cpu"


@pytest.mark.skipif(cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_raises():
    with pytest.raises(RuntimeError, match="No CUDA GPUs are available"):
        C.zeros(2, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="needs a GPU visible to jax")
def test_cuda_creation():
    makers = [lambda d: C.tensor([1.0, 2.0], device=d), lambda d: C.zeros(2, 3, device=d),
              lambda d: C.full((600, 600), 2.0, device=d), lambda d: C.arange(5, device=d),
              lambda d: C.linspace(0, 1, 5, device=d), lambda d: C.eye(3, device=d),
              lambda d: C.randn(3, device=d), lambda d: C.rand(3, device=d),
              lambda d: C.randint(0, 5, (3,), device=d), lambda d: C.randperm(5, device=d),
              lambda d: C.normal(0.0, 1.0, (3,), device=d)]
    for make in makers:
        t = make("cuda")
        assert t.device.type == "cuda"
        assert next(iter(t._data.value.devices())).platform == "gpu"
        c = make("cpu")
        assert next(iter(c._data.value.devices())).platform == "cpu"
    like = C.zeros_like(C.zeros(2, device="cuda"))
    assert like.device.type == "cuda"
    # the same seed gives the same numbers on either device
    C.manual_seed(3)
    a = val(C.randn(5, device="cuda"))
    C.manual_seed(3)
    b = val(C.randn(5))
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ------------------------------------------------------------------------- against torch
def test_matches_torch():
    torch = pytest.importorskip("torch")

    def tdt(t):
        return getattr(D, str(t.dtype).replace("torch.", ""))

    def same(tt, gt, exact=True):
        assert tdt(tt) is gt.dtype, (tt.dtype, gt.dtype)
        assert tuple(tt.shape) == tuple(gt.shape)
        a, b = tt.double().numpy(), val(gt).astype(np.float64)
        if exact:
            np.testing.assert_array_equal(a, b)
        else:   # torch's vectorised kernels round differently by an ulp
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)

    cases = [
        ("tensor", ([1, 2],), {}), ("tensor", ([1.5, 2],), {}), ("tensor", ([[True, 2]],), {}),
        ("tensor", (3.25,), {}), ("tensor", ([[], []],), {}),
        ("tensor", ([1.7, -1.7],), {"dtype": "int64"}),
        ("tensor", ([-1, 255],), {"dtype": "uint8"}),
        ("tensor", ([np.float64(1.0), 2.0],), {}), ("tensor", ([np.float32(1.0), 2],), {}),
        ("tensor", (np.arange(6, dtype=np.int16).reshape(2, 3),), {}),
        ("zeros", (2, 3), {}), ("ones", ((2,),), {"dtype": "int32"}),
        ("full", ((2, 2), 7), {}), ("full", ((2,), True), {}), ("full", ((3,), 2.5), {}),
        ("full", ((2,), 2.7), {"dtype": "int64"}),
        ("arange", (5,), {}), ("arange", (1, 4), {}), ("arange", (10, 0, -3), {}),
        ("arange", (0, 1, 0.1), {}), ("arange", (-3.5, 7.25, 0.75), {"dtype": "float64"}),
        ("arange", (0, 1, 0.1), {"dtype": "int32"}), ("arange", (0.5, 3, 1), {"dtype": "int64"}),
        ("arange", (0, 5), {"dtype": "uint8"}),
        ("linspace", (0, 1, 5), {}), ("linspace", (0, 10, 5), {"dtype": "int64"}),
        ("linspace", (-5, 5, 1000), {}), ("linspace", (0.5, 10.7, 5), {"dtype": "int64"}),
        ("linspace", (-5, 5, 1000), {"dtype": "uint8"}), ("linspace", (0, 1, 1), {}),
        ("eye", (3,), {}), ("eye", (2, 4), {"dtype": "int64"}),
    ]
    for name, args, kw in cases:
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        gkw = {k: getattr(D, v) for k, v in kw.items()}
        same(getattr(torch, name)(*args, **tkw), getattr(C, name)(*args, **gkw),
             exact=name not in ("linspace", "arange"))
    for name in ("randn", "rand", "zeros", "ones", "empty"):
        assert tdt(getattr(torch, name)(2)) is getattr(C, name)(2).dtype
    assert tdt(torch.randint(0, 3, (2,))) is C.randint(0, 3, (2,)).dtype
    assert tdt(torch.randperm(3)) is C.randperm(3).dtype
