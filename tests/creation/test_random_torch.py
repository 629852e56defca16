"""PyTorch's CPU random numbers, bit for bit: the same seed and call sequence give the same
float32/float64 values as torch 2.13 (the torch comparisons need torch; the first test holds a few
of torch's numbers as constants so that a machine without torch still checks the generator)."""
import numpy as np
import pytest

import tracegrad as tg
from tracegrad import _creation as C
from tracegrad import _dtype as D


def val(t):
    return np.asarray(t.detach()._data.value)


def bits(t):
    return val(t).view(np.uint32).ravel().tolist()


def test_torch_stream_constants_for_seed_0():
    # Facts about torch, printed once from torch 2.13.0 (CPU) after torch.manual_seed(0):
    # the float32 bit patterns of rand(3), randn(3), randn(17)[[0, 1, 16]], then randn(20,
    # float64)[[0, 19]], randint(0, 100, (5,)), randperm(8); and nn.Linear(3, 2) after a reseed.
    C.manual_seed(0)
    assert bits(C.rand(3)) == [1056839000, 1061464623, 1035285416]
    assert bits(C.randn(3)) == [1052412553, 1040817969, 1042819150]   # scalar Box-Muller path
    r = val(C.randn(17)).view(np.uint32)                              # blocks of 16 + a redo
    assert r[[0, 1, 16]].tolist() == [3192979467, 1042969413, 1029116439]
    assert val(C.randn(20, dtype=D.float64))[[0, 19]].tolist() == [0.17718935139366584,
                                                                  -2.0547510174380235]
    assert val(C.randint(0, 100, (5,))).tolist() == [19, 60, 7, 14, 75]
    assert val(C.randperm(8)).tolist() == [7, 2, 3, 6, 4, 1, 0, 5]
    C.manual_seed(0)
    lin = tg.nn.Linear(3, 2)
    assert bits(lin.weight) == [3146621928, 1050579731, 3203615614, 3201928137, 3194205361,
                                1042188627]
    assert bits(lin.bias) == [3158010688, 1055547770]


SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 33, 100, 1000, 4099]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def same(ours, theirs):
    a, b = val(ours), theirs.detach().numpy()
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_randn_rand_sizes_and_continuation(torch, dtype):
    """Every size below, at and above the 16-element vectorised normal path; the stream and the
    cached Box-Muller sample carry over from call to call."""
    for seed in (0, 7):
        torch.manual_seed(seed)
        C.manual_seed(seed)
        td, gd = getattr(torch, dtype), getattr(D, dtype)
        for n in SIZES:
            same(C.randn(n, dtype=gd), torch.randn(n, dtype=td))
            same(C.rand(n, dtype=gd), torch.rand(n, dtype=td))
            same(C.randn(3, n % 5 + 1, dtype=gd), torch.randn(3, n % 5 + 1, dtype=td))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_floats(torch, dtype):
    td, gd = getattr(torch, dtype), getattr(D, dtype)
    torch.manual_seed(1)
    C.manual_seed(1)
    for n in SIZES:
        for ours, theirs in ((C.randn(n, dtype=gd), torch.randn(n, dtype=td)),
                             (C.rand(n, dtype=gd), torch.rand(n, dtype=td)),
                             (C.empty(n, dtype=gd).uniform_(-0.3, 0.9),
                              torch.empty(n, dtype=td).uniform_(-0.3, 0.9)),
                             (C.empty(n, dtype=gd).normal_(0.5, 2.0),
                              torch.empty(n, dtype=td).normal_(0.5, 2.0))):
            np.testing.assert_array_equal(val(ours).astype(np.float32), theirs.float().numpy())


def test_default_dtype_and_like(torch):
    torch.manual_seed(3)
    C.manual_seed(3)
    same(C.randn(4, 5), torch.randn(4, 5))
    same(C.randn_like(C.ones(6, 7)), torch.randn_like(torch.ones(6, 7)))
    same(C.rand_like(C.ones(9, dtype=D.float64)),
         torch.rand_like(torch.ones(9, dtype=torch.float64)))
    same(C.randint_like(C.ones(5), 10), torch.randint_like(torch.ones(5), 10))
    tg.set_default_dtype(D.float64)
    torch.set_default_dtype(torch.float64)
    try:
        same(C.randn(20), torch.randn(20))
    finally:
        tg.set_default_dtype(D.float32)
        torch.set_default_dtype(torch.float32)


def test_integers(torch):
    torch.manual_seed(5)
    C.manual_seed(5)
    same(C.randint(-5, 17, (100,)), torch.randint(-5, 17, (100,)))
    same(C.randint(0, 2 ** 40, (50,)), torch.randint(0, 2 ** 40, (50,)))     # random64 path
    same(C.randint(10, (3, 4), dtype=D.float32), torch.randint(10, (3, 4), dtype=torch.float32))
    same(C.randint(0, 256, (20,), dtype=D.uint8), torch.randint(0, 256, (20,), dtype=torch.uint8))
    for n in (0, 1, 2, 10, 1000):
        same(C.randperm(n), torch.randperm(n))
    same(C.randperm(7, dtype=D.float32), torch.randperm(7, dtype=torch.float32))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int8", "int16",
                                   "int32", "int64", "uint8", "bool"])
def test_random_bits_every_dtype(torch, dtype):
    torch.manual_seed(0)
    C.manual_seed(0)
    td, gd = getattr(torch, dtype), getattr(D, dtype)
    for ours, theirs in ((C.empty(100, dtype=gd).random_(), torch.empty(100, dtype=td).random_()),
                         (C.empty(50, dtype=gd).random_(0, 2),
                          torch.empty(50, dtype=td).random_(0, 2))):
        np.testing.assert_array_equal(val(ours).astype(np.float64),
                                      theirs.double().numpy())


def test_normal_forms(torch):
    torch.manual_seed(11)
    C.manual_seed(11)
    for n in (7, 16, 45):
        same(C.normal(2.5, 3.7, (n,)), torch.normal(2.5, 3.7, (n,)))
        same(C.normal(2.5, 3.7, (n,), dtype=D.float64),
             torch.normal(2.5, 3.7, (n,), dtype=torch.float64))
        m, s = np.linspace(-1, 1, n).astype(np.float32), np.linspace(0.1, 2, n).astype(np.float32)
        same(C.normal(C.tensor(m), 0.5), torch.normal(torch.tensor(m), 0.5))
        same(C.normal(0.5, C.tensor(s)), torch.normal(0.5, torch.tensor(s)))
        same(C.normal(C.tensor(m), C.tensor(s)), torch.normal(torch.tensor(m), torch.tensor(s)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inplace_methods(torch, dtype):
    td, gd = getattr(torch, dtype), getattr(D, dtype)
    torch.manual_seed(2)
    C.manual_seed(2)
    for n in (5, 16, 37):
        same(C.empty(n, dtype=gd).uniform_(-0.3, 0.7),
             torch.empty(n, dtype=td).uniform_(-0.3, 0.7))
        same(C.empty(n, dtype=gd).normal_(1.5, 0.25), torch.empty(n, dtype=td).normal_(1.5, 0.25))
        same(C.empty(n, dtype=gd).exponential_(1.5), torch.empty(n, dtype=td).exponential_(1.5))
        same(C.empty(n, dtype=gd).random_(), torch.empty(n, dtype=td).random_())
        same(C.empty(n, dtype=gd).random_(3, 9), torch.empty(n, dtype=td).random_(3, 9))
        p = np.linspace(0, 1, n).astype(dtype)
        same(C.bernoulli(C.tensor(p)), torch.bernoulli(torch.tensor(p)))
        same(C.empty(n, dtype=gd).bernoulli_(C.tensor(p)),
             torch.empty(n, dtype=td).bernoulli_(torch.tensor(p)))
    same(C.empty(9, dtype=D.int64).random_(), torch.empty(9, dtype=torch.int64).random_())
    same(C.empty(9, dtype=D.int64).random_(4), torch.empty(9, dtype=torch.int64).random_(4))


def test_bernoulli_scalar_p(torch):
    """A number p: PyTorch draws a double per element, except on Intel CPUs where a torch built
    with MKL uses MKL's own stream (not reproduced; see docs/random.md)."""
    try:
        intel = "GenuineIntel" in open("/proc/cpuinfo").read()
    except OSError:
        intel = True  # unknown CPU: do not claim either way
    if intel:
        pytest.skip("torch's source has an MKL bernoulli stream for Intel CPUs")
    torch.manual_seed(4)
    C.manual_seed(4)
    same(C.empty(50).bernoulli_(0.3), torch.empty(50).bernoulli_(0.3))


def test_generators_and_state(torch):
    g, tg_ = C.Generator().manual_seed(123), torch.Generator().manual_seed(123)
    same(C.randn(20, generator=g), torch.randn(20, generator=tg_))
    same(C.randn(3, generator=g), torch.randn(3, generator=tg_))       # leaves a cached sample
    state, tstate = g.get_state(), tg_.get_state()
    np.testing.assert_array_equal(val(state), tstate.numpy())          # PyTorch's layout
    same(C.rand(5, generator=g), torch.rand(5, generator=tg_))
    g2 = C.Generator()
    g2.set_state(C.tensor(tstate.numpy()))                             # a state saved by torch
    tg_.set_state(tstate)
    same(C.randn(1, generator=g2), torch.randn(1, generator=tg_))      # the cached sample
    same(C.randn(40, generator=g2), torch.randn(40, generator=tg_))
    torch.manual_seed(9)
    C.manual_seed(9)
    np.testing.assert_array_equal(val(C.get_rng_state()), torch.get_rng_state().numpy())
    with pytest.raises(RuntimeError, match="Expected a CPUGeneratorImplState of size 5056"):
        C.set_rng_state(C.zeros(8, dtype=D.uint8))


def test_seeds(torch):
    for s in (-1, -5, -2 ** 63, 2 ** 32 + 5, 2 ** 63, 2 ** 64 - 1, 123456789012, True, 1.0):
        torch.manual_seed(s)
        C.manual_seed(s)
        assert C.initial_seed() == torch.initial_seed()
        same(C.rand(5), torch.rand(5))
    assert C.Generator().initial_seed() == torch.Generator().initial_seed()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nn_init_and_modules(torch, dtype):
    td, gd = getattr(torch, dtype), getattr(D, dtype)
    for name in ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                 "xavier_normal_"):
        torch.manual_seed(0)
        C.manual_seed(0)
        same(getattr(tg.nn.init, name)(C.empty(20, 7, dtype=gd)),
             getattr(torch.nn.init, name)(torch.empty(20, 7, dtype=td)))
    torch.manual_seed(0)
    C.manual_seed(0)
    ours = tg.nn.Sequential(tg.nn.Linear(4, 16, dtype=gd), tg.nn.ReLU(),
                            tg.nn.Linear(16, 3, dtype=gd))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 16, dtype=td), torch.nn.ReLU(),
                                 torch.nn.Linear(16, 3, dtype=td))
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert n1 == n2
        same(p1, p2)
    same(C.randn(5, dtype=gd), torch.randn(5, dtype=td))       # the stream continues alike


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial(torch, dtype):
    """One sample or no replacement: argmax / top-k of p / exponential_(1); with replacement:
    a double uniform per sample placed in the normalised cumulative weights."""
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        torch.manual_seed(seed)
        C.manual_seed(seed)
        for shape in ((50,), (3, 7)):
            p = rng.random(shape).astype(dtype)
            ours, theirs = C.tensor(p), torch.tensor(p)
            same(C.multinomial(ours, 1), torch.multinomial(theirs, 1))
            same(C.multinomial(ours, 5), torch.multinomial(theirs, 5))
            same(C.multinomial(ours, 12, replacement=True),
                 torch.multinomial(theirs, 12, replacement=True))
            same(ours.multinomial(3, True), theirs.multinomial(3, True))


@pytest.mark.parametrize("kw", [{}, {"std": 0.02}, {"mean": 0.5, "std": 2.0, "a": -1.0, "b": 1.0},
                                {"a": 0.5, "b": 0.9}, {"std": 3.0, "a": -0.5, "b": 0.5}])
def test_trunc_normal(torch, kw):
    """Both of PyTorch 2.13's rejection samplers (normal_ redraws when [a, b] holds > 0.3 of
    the mass, uniform candidates otherwise), float32 and float64."""
    for shape, dtype in (((20, 7), "float32"), ((100,), "float64")):
        torch.manual_seed(0)
        C.manual_seed(0)
        same(tg.nn.init.trunc_normal_(C.empty(*shape, dtype=getattr(D, dtype)), **kw),
             torch.nn.init.trunc_normal_(torch.empty(*shape, dtype=getattr(torch, dtype)), **kw))
        same(C.rand(3), torch.rand(3))            # the same number of draws


def test_orthogonal(torch):
    """The normal_ draws are PyTorch's; the QR is numpy's, so q agrees to rounding only."""
    for shape in ((20, 7), (5, 30), (4, 3, 2)):
        torch.manual_seed(0)
        C.manual_seed(0)
        ours = val(tg.nn.init.orthogonal_(C.empty(*shape), gain=1.5))
        np.testing.assert_allclose(ours, torch.nn.init.orthogonal_(torch.empty(*shape),
                                                                   gain=1.5).numpy(), atol=1e-6)
        same(C.rand(3), torch.rand(3))


def test_iteration_order_of_strided_tensors(torch):
    """PyTorch fills a non-contiguous tensor in memory order; ``iteration_order`` arranges a
    stream drawn in that order (the in-place methods use it for views)."""
    from tracegrad._creation.methods import iteration_order
    for make in (lambda: torch.empty(3, 5).t(), lambda: torch.empty(4, 6)[:, ::2],
                 lambda: torch.empty(2, 3, 4).permute(2, 0, 1),
                 lambda: torch.empty(5, 7)[1:, 2:5]):
        t = make()
        assert not t.is_contiguous()
        torch.manual_seed(0)
        t.uniform_()
        torch.manual_seed(0)
        drawn = torch.rand(t.numel()).numpy()
        np.testing.assert_array_equal(iteration_order(drawn, tuple(t.shape), t.stride()),
                                      t.contiguous().numpy().ravel())


def test_dropout_mask_recipe(torch):
    """PyTorch's CPU F.dropout is x * empty_like(x).bernoulli_(1 - p) / (1 - p): the same
    recipe here draws its mask (on CPUs where PyTorch runs its default bernoulli kernel)."""
    try:
        intel = "GenuineIntel" in open("/proc/cpuinfo").read()
    except OSError:
        intel = True
    if intel:
        pytest.skip("torch's source has an MKL bernoulli stream for Intel CPUs")
    for p in (0.5, 0.1):
        torch.manual_seed(0)
        C.manual_seed(0)
        x = np.linspace(-1, 1, 37).astype(np.float32)
        theirs = torch.nn.functional.dropout(torch.tensor(x), p)
        ours = C.tensor(x) * (C.empty(37).bernoulli_(1 - p) / (1 - p))
        same(ours, theirs)
