"""Tests for tracegrad._creation.from_data: tensor() dtype inference, values, copies, errors."""
import jax
import numpy as np
import pytest

from tracegrad import _creation as C
from tracegrad import _dtype as D
from tracegrad._tensor import Tensor


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
