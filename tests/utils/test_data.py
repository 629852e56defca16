"""tracegrad.utils.data against torch.utils.data: batches, collation, lengths, errors, and
(where tracegrad's generator reproduces PyTorch's) the shuffle order."""
import collections
import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.utils import data as D


def _plain(x):
    """A batch as nested Python values with dtype names, comparable across libraries."""
    if hasattr(x, "dtype") and hasattr(x, "tolist") and not isinstance(x, np.ndarray):
        return ("tensor", str(x.dtype).split(".")[-1], tuple(x.shape), x.tolist())
    if isinstance(x, dict):
        return (type(x).__name__, {k: _plain(v) for k, v in x.items()})
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return ("namedtuple", tuple(_plain(v) for v in x))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_plain(v) for v in x])
    return x


Point = collections.namedtuple("Point", "x y")


def _samples(lib):
    return [
        [(lib.ones(2) * i, i) for i in range(5)],
        [{"img": np.full((2, 2), i, np.float32), "label": i % 2, "w": 0.5 * i, "name": f"s{i}"}
         for i in range(5)],
        [Point(np.int64(i), [float(i), True]) for i in range(5)],
        [np.float32(i) for i in range(5)],
        [collections.OrderedDict(a=lib.tensor([i, i]), b=(i, b"x")) for i in range(5)],
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("kw", [dict(batch_size=2), dict(batch_size=2, drop_last=True),
                                dict(batch_size=None), dict(batch_size=5)])
def test_default_collation_matches_torch(case, kw):
    T = pytest.importorskip("torch")
    ours = [_plain(b) for b in D.DataLoader(_samples(tg)[case], **kw)]
    theirs = [_plain(b) for b in T.utils.data.DataLoader(_samples(T)[case], **kw)]
    assert ours == theirs


def test_default_collate_without_torch():
    out = D.default_collate([(tg.ones(2), 1, 2.5, True), (tg.zeros(2), 2, 3.5, False)])
    assert isinstance(out, list) and out[0].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert out[1].dtype is tg.int64 and out[2].dtype is tg.float64 and out[3].dtype is tg.bool
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        D.default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy "
                                        "arrays, numbers, dicts or lists; found <class 'object'>"):
        D.default_collate([object()])


def test_tensor_dataset_batches_with_one_gather_per_batch():
    x = tg.arange(20.0).reshape(10, 2)
    y = tg.arange(10)
    ds = D.TensorDataset(x, y)
    calls = []

    class Counting(D.TensorDataset):
        def __getitem__(self, i):
            calls.append(i)
            return super().__getitem__(i)

    loader = D.DataLoader(Counting(x, y), batch_size=4)
    batches = list(loader)
    assert calls == []  # never per sample
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    # a custom collate_fn still sees per-sample tuples
    seen = D.DataLoader(ds, batch_size=3, collate_fn=lambda b: [s[1].item() for s in b])
    assert list(seen) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        D.TensorDataset(tg.ones(3), tg.ones(4))


def test_numpy_samples_are_batched_with_one_transfer(monkeypatch):
    from tracegrad.utils.data import _collate
    calls = []
    real = _collate.as_tensor
    monkeypatch.setattr(_collate, "as_tensor", lambda a, *k: calls.append(a.shape) or real(a, *k))
    samples = [(np.full(3, i, np.float32), np.int64(i)) for i in range(8)]
    xb, yb = next(iter(D.DataLoader(samples, batch_size=8)))
    assert calls == [(8, 3), (8,)]
    assert xb.dtype is tg.float32 and xb.tolist()[5] == [5.0] * 3 and yb.tolist() == list(range(8))
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        D.default_collate([np.zeros(2), np.zeros(3)])


def test_lengths_match_torch():
    T = pytest.importorskip("torch")
    for n in (1, 7, 8):
        for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None),
                   dict(batch_size=4, shuffle=True)):
            a = D.DataLoader(list(range(n)), **kw)
            b = T.utils.data.DataLoader(list(range(n)), **kw)
            assert len(a) == len(b) == len(iter(a)) and len(list(a)) == len(list(b))


class Stream(D.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_iterable_dataset_batches_and_errors():
    assert [b.tolist() for b in D.DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in D.DataLoader(Stream(7), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    assert len(D.DataLoader(Stream(7), batch_size=3)) == 3
    assert list(D.DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]
    with pytest.raises(ValueError, match="expected unspecified shuffle option, but got shuffle=True"):
        D.DataLoader(Stream(3), shuffle=True)


def test_argument_errors_read_like_torch():
    ds = list(range(4))
    sampler = D.SequentialSampler(ds)
    cases = [
        (dict(sampler=sampler, shuffle=True), "sampler option is mutually exclusive with shuffle"),
        (dict(batch_sampler=D.BatchSampler(sampler, 2, False), batch_size=2),
         "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"),
        (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching"),
        (dict(num_workers=-1), "num_workers option should be non-negative"),
        (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            D.DataLoader(ds, **kw)
    with pytest.raises(NotImplementedError, match="num_workers=2"):
        D.DataLoader(ds, num_workers=2)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=0"):
        D.BatchSampler(sampler, 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        D.RandomSampler(ds, num_samples=0)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        D.WeightedRandomSampler([[1.0]], 2)
    assert len(list(D.DataLoader(ds, pin_memory=True))) == 4


def test_samplers_are_permutations_and_reproducible():
    ds = list(range(10))
    g = tg.Generator().manual_seed(0)
    first = list(D.RandomSampler(ds, generator=g))
    assert sorted(first) == ds
    assert list(D.RandomSampler(ds, generator=tg.Generator().manual_seed(0))) == first
    draws = list(D.RandomSampler(ds, replacement=True, num_samples=70, generator=g))
    assert len(draws) == 70 and set(draws) <= set(ds)
    tg.manual_seed(1)
    a = [b.tolist() for b in D.DataLoader(ds, batch_size=3, shuffle=True)]
    tg.manual_seed(1)
    b = [b.tolist() for b in D.DataLoader(ds, batch_size=3, shuffle=True)]
    assert a == b and sorted(sum(a, [])) == ds
    sub = list(D.SubsetRandomSampler([5, 7, 9], generator=g))
    assert sorted(sub) == [5, 7, 9]


def test_weighted_sampler_follows_the_weights():
    g = tg.Generator().manual_seed(0)
    draws = list(D.WeightedRandomSampler([0.0, 1.0, 3.0], 4000, generator=g))
    counts = np.bincount(draws, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3.0) < 0.4
    once = list(D.WeightedRandomSampler([0.1, 0.0, 5.0, 1.0], 3, replacement=False, generator=g))
    assert sorted(once) == [0, 2, 3]
    with pytest.raises(RuntimeError, match="invalid multinomial distribution"):
        list(D.WeightedRandomSampler([1.0, 0.0], 2, replacement=False))


def test_datasets_subset_concat_random_split():
    a, b = D.TensorDataset(tg.arange(3)), D.TensorDataset(tg.arange(10, 14))
    cat = a + b
    assert isinstance(cat, D.ConcatDataset) and len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert cat[3][0].item() == 10 and cat[-1][0].item() == 13
    sub = D.Subset(cat, [6, 0])
    assert len(sub) == 2 and sub[0][0].item() == 13
    assert [x.tolist() for x in D.default_collate(sub.__getitems__([0, 1]))] == [[13, 0]]
    g = tg.Generator().manual_seed(0)
    parts = D.random_split(range(10), [0.5, 0.3, 0.2], generator=g)
    assert [len(p) for p in parts] == [5, 3, 2]
    assert sorted(sum((list(p) for p in parts), [])) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        D.random_split(range(10), [3, 3])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        D.random_split(range(2), [0.9, 0.1])
    assert "Length of split at index 1 is 0" in str(w[0].message)
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        D.ConcatDataset([])


def _same_generator_as_torch(T):
    tg.manual_seed(0)
    T.manual_seed(0)
    return tg.randperm(20).tolist() == T.randperm(20).tolist() and \
        hasattr(tg.empty(()), "random_")


def test_shuffle_order_equals_torchs_for_the_same_seed():
    T = pytest.importorskip("torch")
    if not _same_generator_as_torch(T):
        pytest.skip("depends on tracegrad's generator reproducing PyTorch's CPU generator "
                    "(manual_seed/randperm/random_ bit for bit), not in this build")
    for seed in (0, 7):
        tg.manual_seed(seed)
        T.manual_seed(seed)
        for _ in range(2):  # two epochs: the per-iterator draws stay in step
            ours = [b.tolist() for b in D.DataLoader(list(range(13)), batch_size=4, shuffle=True)]
            theirs = [b.tolist() for b in T.utils.data.DataLoader(list(range(13)), batch_size=4,
                                                                  shuffle=True)]
            assert ours == theirs
        g, tgen = tg.Generator().manual_seed(seed), T.Generator().manual_seed(seed)
        assert list(D.RandomSampler(range(9), replacement=True, num_samples=40, generator=g)) == \
            list(T.utils.data.RandomSampler(range(9), replacement=True, num_samples=40,
                                            generator=tgen))
        assert [list(p) for p in D.random_split(range(9), [4, 5], generator=g)] == \
            [list(p) for p in T.utils.data.random_split(range(9), [4, 5], generator=tgen)]
