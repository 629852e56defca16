"""nn.utils: gradient clipping and parameter vectors, against torch and closed forms."""
import math

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn.utils import (clip_grad_norm_, clip_grad_value_, parameters_to_vector,
                                vector_to_parameters)


def _params(lib, grads):
    ps = []
    for g in grads:
        p = lib.nn.Parameter(lib.zeros(len(g)))
        p.grad = lib.tensor(g)
        ps.append(p)
    return ps


GRADS = [[3.0, -4.0, 0.5], [0.0, 12.0], [-1e-3]]


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    T = pytest.importorskip("torch")
    ours, theirs = _params(tg, GRADS), _params(T, GRADS)
    a = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    b = T.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert a.dtype is tg.float32 and math.isclose(a.item(), b.item(), rel_tol=1e-6)
    for p, q in zip(ours, theirs):
        assert np.allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_clip_grad_norm_closed_form_and_errors():
    ps = _params(tg, GRADS)
    total = clip_grad_norm_(ps, 1.0)
    expected = math.sqrt(9 + 16 + 0.25 + 144 + 1e-6)
    assert math.isclose(total.item(), expected, rel_tol=1e-6)
    assert math.isclose(parameters_to_vector([p.grad for p in ps]).norm().item(), 1.0, rel_tol=1e-5)
    assert clip_grad_norm_([nn.Parameter(tg.ones(1))], 1.0).item() == 0.0  # no grads
    bad = _params(tg, [[float("nan"), 1.0]])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    assert np.isnan(bad[0].grad.numpy()[0]) and bad[0].grad.numpy()[1] == 1.0  # untouched


def test_clip_grad_value():
    ps = _params(tg, GRADS)
    assert clip_grad_value_(ps, 2.0) is None
    assert ps[0].grad.tolist() == [2.0, -2.0, 0.5] and ps[1].grad.tolist() == [0.0, 2.0]
    single = _params(tg, [[5.0]])[0]
    clip_grad_value_(single, 1)
    assert single.grad.tolist() == [1.0]


def test_parameters_to_vector_and_back():
    m = nn.Linear(3, 2)
    vec = parameters_to_vector(m.parameters())
    assert vec.shape == (8,) and vec.requires_grad
    assert np.array_equal(vec.detach().numpy()[:6], m.weight.detach().numpy().reshape(-1))
    vector_to_parameters(tg.arange(8.0), m.parameters())
    assert m.weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and m.bias.tolist() == [6.0, 7.0]
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        vector_to_parameters([1.0], m.parameters())
