"""Tests for tracegrad._creation.factories: zeros/ones/full/arange/linspace/eye, *_like, devices,
and the values against torch."""
import math

import numpy as np
import pytest

from tracegrad import _creation as C
from tracegrad import _dtype as D
from tracegrad._device import cuda


def val(t):
    """The tensor's value as a numpy array (no autograd checks)."""
    return np.asarray(t._data.value)


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
