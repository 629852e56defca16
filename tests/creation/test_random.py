"""Tests for tracegrad._creation.random, .generator and .methods: seeding, dtypes, ranges,
generators, errors."""
import jax
import numpy as np
import pytest

from tracegrad import _creation as C
from tracegrad import _dtype as D


def val(t):
    """The tensor's value as a numpy array (no autograd checks)."""
    return np.asarray(t._data.value)


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
    C.manual_seed(-1)              # negative seeds are read unsigned, as torch 2.13 does
    assert C.initial_seed() == 2 ** 64 - 1
    C.manual_seed(-2 ** 63)
    assert C.initial_seed() == 2 ** 63
    C.manual_seed(2 ** 64 - 1)
    s = C.seed()
    assert isinstance(s, int) and C.initial_seed() == s
    state = C.get_rng_state()
    a = C.randn(3)
    C.set_rng_state(state)
    assert (val(C.randn(3)) == val(a)).all()
    C.manual_seed(0)


def test_random_inside_jit_draws_on_the_host():
    """The generator is host state: drawing while jax traces gives concrete numbers (baked
    into that trace) and advances the stream like an eager draw."""
    C.manual_seed(0)

    @jax.jit
    def f(x):
        return x + C.randn(2)._data.value

    out = np.asarray(f(np.zeros(2, np.float32)))
    C.manual_seed(0)
    np.testing.assert_array_equal(out, val(C.randn(2)))
    assert C.randn(2).shape == (2,)     # the generator still works


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


def test_inplace_random_errors_and_versions():
    t = C.zeros(4, dtype=D.int64)
    with pytest.raises(NotImplementedError, match="\"check_uniform_bounds\" not implemented for "
                                                  "'Long'"):
        t.uniform_()
    with pytest.raises(NotImplementedError, match="\"normal_kernel_cpu\" not implemented for "
                                                  "'Long'"):
        t.normal_()
    f = C.zeros(4)
    with pytest.raises(RuntimeError, match=r"uniform_ expects to return a \[from, to\) range, "
                                           r"but found from=1 > to=0"):
        f.uniform_(1, 0)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
        f.normal_(0, -1)
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to'"):
        f.random_(3, 3)
    with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\]"):
        f.bernoulli_(1.5)
    with pytest.raises(RuntimeError, match="exponential_ expects lambda > 0.0"):
        f.exponential_(0)
    assert (val(f) == 0).all()                # nothing half-changed after an error
    v = f._version
    assert f.uniform_() is f and f._version == v + 1
    w = C.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.normal_()


def test_multinomial_errors():
    with pytest.raises(RuntimeError, match="probability tensor contains either `inf`, `nan` or "
                                           "element < 0"):
        C.multinomial(C.tensor([-1.0, 1.0]), 1)
    with pytest.raises(RuntimeError, match=r"invalid multinomial distribution \(sum of "
                                           r"probabilities <= 0\)"):
        C.multinomial(C.tensor([0.0, 0.0]), 1)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        C.multinomial(C.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="cannot sample n_sample <= 0 samples"):
        C.multinomial(C.tensor([0.5, 0.5]), 0)
    with pytest.raises(RuntimeError, match="prob_dist must be 1 or 2 dim"):
        C.multinomial(C.ones(2, 2, 2), 1)
    s = C.multinomial(C.tensor([0.0, 1.0, 0.0]), 4, replacement=True)
    assert s.dtype is D.int64 and val(s).tolist() == [1, 1, 1, 1]


def test_trunc_normal_and_orthogonal_without_torch():
    import tracegrad as tg
    C.manual_seed(0)
    t = tg.nn.init.trunc_normal_(C.empty(1000), mean=0.5, std=2.0, a=-1.0, b=1.0)
    v = val(t)
    assert v.min() >= -1.0 and v.max() <= 1.0 and len(np.unique(v)) == 1000
    t = tg.nn.init.trunc_normal_(C.empty(1000, dtype=D.float64), a=0.5, b=0.9)
    assert val(t).min() >= 0.5 and val(t).max() <= 0.9
    w = val(tg.nn.init.orthogonal_(C.empty(5, 12)))
    np.testing.assert_allclose(w @ w.T, np.eye(5), atol=1e-5)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions"):
        tg.nn.init.orthogonal_(C.empty(3))


def test_rng_state_errors():
    good = C.get_rng_state()
    with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
        C.set_rng_state(C.zeros(5056))
    with pytest.raises(TypeError, match="expected a torch.ByteTensor, but got list"):
        C.set_rng_state([1, 2])
    with pytest.raises(RuntimeError, match="Expected a CPUGeneratorImplState of size 5056 but "
                                           "found the input RNG state size to be 8"):
        C.set_rng_state(C.zeros(8, dtype=D.uint8))
    bad = val(good).copy()
    bad[8:12] = 0                                  # left = 0: not a state torch would write
    with pytest.raises(RuntimeError, match="Invalid mt19937 state"):
        C.set_rng_state(C.tensor(bad))
    after = C.rand(3)                              # a refused state leaves the generator as it was
    C.set_rng_state(good)
    np.testing.assert_array_equal(val(C.rand(3)), val(after))


def test_engine_is_std_mt19937():
    """The C++ standard requires the 10000th output of a default-constructed std::mt19937 (seed
    5489) to be 4123659995; PyTorch's at::mt19937 is that engine, and so is ours."""
    g = C.Generator().manual_seed(5489)
    assert int(g._random(10000)[-1]) == 4123659995
    g.manual_seed(5489 + 2 ** 32)              # only the low 32 bits seed the engine ...
    assert int(g._random(10000)[-1]) == 4123659995
    assert g.initial_seed() == 5489 + 2 ** 32  # ... but the whole seed is kept
