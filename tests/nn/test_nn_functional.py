"""nn.functional: losses and activations, values and input gradients against torch (when
installed), closed forms otherwise, and PyTorch's errors."""
import math

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn
import tracegrad.nn.functional as F

RNG = np.random.default_rng(0)


def _np(t):
    return t.detach().numpy()


def _pair(T, a):
    """The same float array as a tracegrad and a torch leaf that require grad."""
    return torch.tensor(a, requires_grad=True), T.tensor(a, requires_grad=True)


def _check(T, ours_fn, theirs_fn, inputs, consts=(), atol=1e-5):
    """Compare value and gradients of ``fn(*inputs, *consts)``; ``sum(out * w)`` is
    back-propagated with a fixed random ``w`` so 'none' reductions are checked too."""
    pairs = [_pair(T, a) for a in inputs]
    ours = ours_fn(*[p[0] for p in pairs], *[c[0] for c in consts])
    theirs = theirs_fn(*[p[1] for p in pairs], *[c[1] for c in consts])
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert np.allclose(_np(ours), theirs.detach().numpy(), atol=atol), (_np(ours), theirs)
    w = RNG.standard_normal(tuple(ours.shape)).astype(np.float32)
    (ours * torch.tensor(w)).sum().backward()
    (theirs * T.tensor(w)).sum().backward()
    for (a, b) in pairs:
        assert np.allclose(_np(a.grad), b.grad.numpy(), atol=atol)


def _targets(T, shape, n_classes, ignore=None):
    t = RNG.integers(0, n_classes, shape)
    if ignore is not None:
        t.flat[0] = ignore
    return torch.tensor(t), T.tensor(t)


CE_CASES = [
    dict(shape=(4, 5), reduction="mean"),
    dict(shape=(4, 5), reduction="sum"),
    dict(shape=(4, 5), reduction="none"),
    dict(shape=(5,), reduction="mean"),
    dict(shape=(3, 4, 2), reduction="mean"),
    dict(shape=(3, 4, 2), reduction="none"),
    dict(shape=(4, 5), reduction="mean", weight=True),
    dict(shape=(4, 5), reduction="none", weight=True),
    dict(shape=(4, 5), reduction="mean", ignore_index=2),
    dict(shape=(4, 5), reduction="sum", weight=True, ignore_index=1),
    dict(shape=(4, 5), reduction="mean", label_smoothing=0.1),
    dict(shape=(4, 5), reduction="mean", label_smoothing=0.2, weight=True, ignore_index=3),
    dict(shape=(4, 5), reduction="none", label_smoothing=0.2, ignore_index=3),
]


@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_cross_entropy_matches_torch(case):
    T = pytest.importorskip("torch")
    shape = case["shape"]
    C = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    ignore = case.get("ignore_index")
    tgt = _targets(T, tshape, C, ignore)
    kw = dict(reduction=case["reduction"], label_smoothing=case.get("label_smoothing", 0.0))
    if ignore is not None:
        kw["ignore_index"] = ignore
    consts = [tgt]
    if case.get("weight"):
        w = RNG.uniform(0.5, 2.0, C).astype(np.float32)
        consts.append((torch.tensor(w), T.tensor(w)))
        _check(T, lambda x, t, w: F.cross_entropy(x, t, weight=w, **kw),
               lambda x, t, w: T.nn.functional.cross_entropy(x, t, weight=w, **kw),
               [RNG.standard_normal(shape).astype(np.float32)], consts)
    else:
        _check(T, lambda x, t: F.cross_entropy(x, t, **kw),
               lambda x, t: T.nn.functional.cross_entropy(x, t, **kw),
               [RNG.standard_normal(shape).astype(np.float32)], consts)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_with_probability_targets_matches_torch(reduction, smoothing):
    T = pytest.importorskip("torch")
    p = RNG.uniform(size=(3, 4)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _check(T, lambda x, t: F.cross_entropy(x, t, **kw),
           lambda x, t: T.nn.functional.cross_entropy(x, t, **kw),
           [RNG.standard_normal((3, 4)).astype(np.float32)],
           [(torch.tensor(p), T.tensor(p))])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(reduction):
    T = pytest.importorskip("torch")
    tgt = _targets(T, (6,), 3, ignore=-100)
    _check(T, lambda x, t: F.nll_loss(F.log_softmax(x, 1), t, reduction=reduction),
           lambda x, t: T.nn.functional.nll_loss(T.nn.functional.log_softmax(x, 1), t,
                                                 reduction=reduction),
           [RNG.standard_normal((6, 3)).astype(np.float32)], [tgt])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    T = pytest.importorskip("torch")
    _check(T, lambda x, y: F.mse_loss(x, y, reduction=reduction),
           lambda x, y: T.nn.functional.mse_loss(x, y, reduction=reduction),
           [RNG.standard_normal((3, 4)).astype(np.float32),
            RNG.standard_normal((3, 4)).astype(np.float32)])


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activations_match_torch(name):
    T = pytest.importorskip("torch")
    _check(T, getattr(F, name), getattr(T.nn.functional, name),
           [RNG.standard_normal((3, 4)).astype(np.float32)])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmaxes_match_torch(name):
    T = pytest.importorskip("torch")
    _check(T, lambda x: getattr(F, name)(x, dim=-1),
           lambda x: getattr(T.nn.functional, name)(x, dim=-1),
           [RNG.standard_normal((3, 4)).astype(np.float32)])


def test_linear_function_matches_torch():
    T = pytest.importorskip("torch")
    _check(T, F.linear, T.nn.functional.linear,
           [RNG.standard_normal((2, 3)).astype(np.float32),
            RNG.standard_normal((4, 3)).astype(np.float32),
            RNG.standard_normal((4,)).astype(np.float32)])


# ------------------------------------------------------------------------------ without torch
def test_cross_entropy_of_uniform_logits_is_log_of_class_count():
    x = torch.zeros(3, 7, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0, 3, 6]))
    assert abs(loss.item() - math.log(7)) < 1e-6
    loss.backward()
    expected = np.full((3, 7), 1 / 7 / 3, np.float32)
    expected[[0, 1, 2], [0, 3, 6]] -= 1 / 3
    assert np.allclose(_np(x.grad), expected, atol=1e-7)


def test_cross_entropy_is_stable_for_large_logits():
    x = torch.tensor([[1000.0, 0.0], [0.0, -1000.0]], requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([1, 1]))
    assert abs(loss.item() - 1000.0) < 1e-3  # both rows put the target 1000 below the max
    loss.backward()
    assert np.isfinite(_np(x.grad)).all()


def test_ignored_targets_contribute_nothing():
    x = torch.randn(4, 3, requires_grad=True)
    t = torch.tensor([0, -100, 2, -100])
    full = F.cross_entropy(x, t, reduction="none")
    assert full[1].item() == 0 and full[3].item() == 0
    mean = F.cross_entropy(x, t)
    assert abs(mean.item() - (full[0].item() + full[2].item()) / 2) < 1e-6
    mean.backward()
    assert _np(x.grad)[[1, 3]].tolist() == [[0.0] * 3] * 2


def test_mse_loss_value_and_gradient():
    x = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    loss = nn.MSELoss()(x, torch.tensor([1.0, 0.0, 1.0]))
    assert abs(loss.item() - 13 / 3) < 1e-6
    loss.backward()
    assert np.allclose(_np(x.grad), [0.0, 4 / 3, 2.0])
    assert F.mse_loss(x, torch.zeros(3), reduction="sum").item() == 21.0


def test_mse_loss_warns_when_shapes_broadcast():
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(torch.zeros(3, 1), torch.zeros(3))


def test_loss_errors_read_like_pytorch():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target "
                                         r"batch_size \(2\)"):
        F.cross_entropy(x, torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="^expected target dtype to be Long or Byte, but got Float$"):
        F.nll_loss(x, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.mse_loss(x, x, reduction="foo")
    with pytest.raises(RuntimeError, match="^0D or 1D target tensor expected, multi-target not supported$"):
        F.cross_entropy(x, torch.zeros(3, 5))  # a float target of another shape: class indices
    with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 4"):
        F.cross_entropy(x, torch.tensor([0, 1, 2]), weight=torch.ones(3))
    # the inputs are untouched and the loss still works afterwards
    assert F.cross_entropy(x, torch.tensor([0, 1, 2])).ndim == 0


def test_loss_modules_keep_their_options():
    w = torch.tensor([1.0, 2.0])
    ce = nn.CrossEntropyLoss(weight=w, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert ce.weight is w and dict(ce.named_buffers()) == {"weight": w}
    x = torch.randn(3, 2)
    t = torch.tensor([0, 1, 0])
    ref = F.cross_entropy(x, t, weight=w, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert ce(x, t).item() == ref.item()
    assert nn.NLLLoss()(F.log_softmax(x, 1), t).item() == F.cross_entropy(x, t).item()


def test_cross_entropy_is_twice_differentiable():
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([1, 2]))
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    # d/dx of sum(softmax - onehot)/N is zero for every row: softmax sums to one
    assert np.allclose(gg.numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("bad", [5, -3])
def test_out_of_range_targets_raise_like_pytorch(bad):
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match=f"^Target {bad} is out of bounds.$"):
        F.cross_entropy(x, torch.tensor([0, bad, 1]))
    # ignored targets are not out of bounds, and the inputs still work afterwards
    F.cross_entropy(x, torch.tensor([0, -100, 1])).backward()
    assert x.grad[1].abs().sum().item() == 0


def test_an_ignore_index_inside_the_class_range_is_ignored():
    x = torch.randn(4, 3)
    t = torch.tensor([0, 1, 2, 1])
    full = F.cross_entropy(x, t, reduction="none")
    masked = F.cross_entropy(x, t, ignore_index=1, reduction="none")
    assert masked.tolist()[1] == 0 and masked.tolist()[3] == 0
    assert np.allclose(_np(masked)[[0, 2]], _np(full)[[0, 2]])
    assert abs(F.cross_entropy(x, t, ignore_index=1).item() - _np(full)[[0, 2]].mean()) < 1e-6
