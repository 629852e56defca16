"""The graph a user sees, as PyTorch's: grad_fn names and next_functions of losses and
``Linear``, and the profiler's op names (``aten::...``).

The transpose of a weight is named ``TBackward0`` by PyTorch; until ``t()`` reports that name,
``TransposeBackward0`` is accepted in its place (``T_NAMES``)."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

T_NAMES = {"TBackward0", "TransposeBackward0"}


def _name(node):
    if node is None:
        return None
    return node.name() if hasattr(node, "name") and not isinstance(node, type) else type(node).__name__


def tree(t, depth=3):
    """``(name, [subtrees of next_functions])`` of ``t.grad_fn``, ``depth`` levels deep."""
    def walk(n, d):
        if n is None:
            return None
        name = _name(n) if n.__class__.__module__.startswith("tracegrad") else type(n).__name__
        name = "TBackward0" if name in T_NAMES else name
        name = name.replace("torch::autograd::", "")
        return (name, [walk(m, d - 1) for m, _ in n.next_functions] if d else [])
    return walk(t.grad_fn, depth)


def _programs(lib, F):
    x = lib.tensor(np.linspace(-1, 1, 12).reshape(4, 3), dtype=lib.float32, requires_grad=True)
    target = lib.tensor([0, 2, 1, 2])
    fc = lib.nn.Linear(3, 5)
    fc_nb = lib.nn.Linear(3, 5, bias=False)
    return {
        "mse": F.mse_loss(x, lib.zeros(4, 3)),
        "mse_sum": F.mse_loss(x, lib.zeros(4, 3), reduction="sum"),
        "mse_none": F.mse_loss(x, lib.ones(4, 3, requires_grad=True), reduction="none"),
        "nll": F.nll_loss(F.log_softmax(x, 1), target),
        "ce": F.cross_entropy(x, target),
        "ce_none": F.cross_entropy(x, target, reduction="none"),
        "ce_weight": F.cross_entropy(x, target, weight=lib.ones(3), ignore_index=1),
        "linear_2d": fc(x),
        "linear_2d_leaf_input": fc(x.detach()),
        "linear_1d": fc(x[0].detach().requires_grad_()),
        "linear_3d": fc(x.reshape(2, 2, 3)),
        "linear_nobias_2d": fc_nb(x),
        "linear_nobias_1d": fc_nb(x[0].detach().requires_grad_()),
        "linear_nobias_3d": fc_nb(x.reshape(2, 2, 3)),
        "norm": x.norm(),
        "norm_dim": x.norm(dim=1),
    }


EXPECTED_TOP = {
    "mse": "MseLossBackward0", "mse_sum": "MseLossBackward0", "mse_none": "MseLossBackward0",
    "nll": "NllLossBackward0", "ce": "NllLossBackward0", "ce_none": "NllLossBackward0",
    "ce_weight": "NllLossBackward0", "linear_2d": "AddmmBackward0",
    "linear_2d_leaf_input": "AddmmBackward0", "linear_1d": "ViewBackward0",
    "linear_3d": "ViewBackward0", "linear_nobias_2d": "MmBackward0",
    "linear_nobias_1d": "SqueezeBackward4", "linear_nobias_3d": "UnsafeViewBackward0",
    "norm": "LinalgVectorNormBackward0", "norm_dim": "LinalgVectorNormBackward0",
}


def _drop_none_edges(t):
    # PyTorch's NllLossBackward0 lists only the input; tracegrad adds (None, 0) for the target
    if t is None:
        return None
    name, kids = t
    if name == "NllLossBackward0":
        kids = [k for k in kids if k is not None]
    return (name, [_drop_none_edges(k) for k in kids])


@pytest.mark.parametrize("case", sorted(EXPECTED_TOP))
def test_grad_fn_tree_matches_pytorch(case, torch_ref):
    ours = _drop_none_edges(tree(_programs(tg, F)[case]))
    theirs = tree(_programs(torch_ref, torch_ref.nn.functional)[case])
    assert ours == theirs


@pytest.mark.parametrize("case", sorted(EXPECTED_TOP))
def test_grad_fn_top_name(case):
    assert tree(_programs(tg, F)[case], 0)[0] == EXPECTED_TOP[case]


def test_linear_next_functions_in_pytorchs_order():
    fc = tg.nn.Linear(3, 2)
    x = tg.ones(4, 3, requires_grad=True)
    node = fc(x).grad_fn
    (b, _), (xin, _), (wt, _) = node.next_functions
    assert b.variable is fc.bias and xin.variable is x
    assert _name(wt) in T_NAMES and wt.next_functions[0][0].variable is fc.weight


def test_cross_entropy_is_nll_over_log_softmax():
    x = tg.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(x, tg.tensor([0, 2, 1, 2]))
    assert loss.grad_fn.name() == "NllLossBackward0"
    assert loss.grad_fn.next_functions[0][0].name() == "LogSoftmaxBackward0"
    assert loss.grad_fn.next_functions[0][0].next_functions[0][0].variable is x


@pytest.mark.parametrize("reduction,expected", [("mean", 13 / 6), ("sum", 13.0),
                                                ("none", [[1.0, 4.0, 0.0], [0.0, 4.0, 4.0]])])
def test_mse_loss_reductions(reduction, expected):
    x = tg.tensor([[1.0, 2.0, 0.0], [0.0, -2.0, 2.0]], dtype=tg.float64, requires_grad=True)
    loss = F.mse_loss(x, tg.zeros(2, 3, dtype=tg.float64), reduction=reduction)
    assert loss.grad_fn.name() == "MseLossBackward0"
    np.testing.assert_allclose(np.asarray(loss.tolist()), expected)
    loss.sum().backward()
    scale = 1 / 6 if reduction == "mean" else 1.0
    np.testing.assert_allclose(np.asarray(x.grad.tolist()), 2 * scale * np.asarray(x.tolist()))


def test_profiler_op_names_match_pytorch(torch_ref):
    """A small program's forward op names, as torch.profiler lists them (key_averages)."""
    def prog(lib, F):
        x = lib.ones(8, 4)
        w = lib.ones(3, 4, requires_grad=True)
        b = lib.zeros(3, requires_grad=True)
        y = F.linear(x, w, b)
        z = (lib.tanh(y) * 2 + 1).sum() + F.mse_loss(y, lib.zeros(8, 3))
        return z + F.cross_entropy(y, lib.tensor([0, 1, 2, 0, 1, 2, 0, 1]))

    with tg.autograd.profiler.profile() as ours:
        prog(tg, F)
    with torch_ref.profiler.profile() as theirs:
        prog(torch_ref, torch_ref.nn.functional)
    our_names = {e.key for e in ours.key_averages()}
    their_names = {e.key for e in theirs.key_averages()}
    forward = {"aten::addmm", "aten::mul", "aten::add", "aten::sum", "aten::tanh",
               "aten::mse_loss", "aten::log_softmax", "aten::nll_loss"}
    assert forward <= their_names
    assert forward <= our_names
    assert not [n for n in our_names if n.startswith("tg::")]
