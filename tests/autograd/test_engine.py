"""The backward engine: graph shapes (diamonds, shared subgraphs), retain_graph, create_graph,
``inputs=``, ``grad()``, hooks, retain_grad, storage sharing and version counters, and the
structure of the graph (``grad_fn`` names, ``next_functions``) compared with PyTorch."""
from __future__ import annotations

import warnings

import pytest

import tracegrad as torch
from tracegrad.autograd.graph import AccumulateGrad


def _leaf(*values):
    return torch.tensor(list(values) or [1.0, 2.0], requires_grad=True)


# ----------------------------------------------------------------------------- graph shapes
def test_diamond_sums_both_paths_once():
    x = _leaf(3.0)
    y = x * 2
    a, b = y.exp(), y.sin()  # two paths from y to the output
    calls = []
    y.register_hook(lambda g: calls.append(g.item()))
    (a + b).backward()
    dy = (torch.tensor(6.0).exp() + torch.tensor(6.0).cos()).item()
    assert calls == [pytest.approx(dy)]  # the hook on the shared node sees the sum, once
    assert x.grad.item() == pytest.approx(2 * dy)


def test_shared_subgraph_used_many_times():
    x = _leaf(1.0, 2.0)
    h = x * x  # shared by every term below
    seen = []
    h.register_hook(lambda g: seen.append(g.tolist()))
    out = (h + h * 3 + h.sum() * h).sum()  # = sum(h) * 4 + sum(h)^2
    out.backward()
    # d out / d h_j = 1 + 3 + 2 sum(h) = 14, arriving from four uses of h
    assert seen == [[14.0, 14.0]]
    assert x.grad.tolist() == [2 * 1.0 * 14, 2 * 2.0 * 14]


def test_same_leaf_on_both_sides():
    x = _leaf(3.0)
    (x * x * x).backward()
    assert x.grad.item() == 27.0


def test_retain_graph_then_backward_again_accumulates():
    x = _leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    assert x.grad.tolist() == [4.0, 8.0]
    x.grad = None  # "清0": reset before the next pass
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_accumulate_into_existing_grad_keeps_the_grad_object_history_free():
    x = _leaf(1.0)
    (x * 2).backward()
    g = x.grad
    (x * 3).backward()
    assert x.grad.item() == 5.0 and x.grad.grad_fn is None and not x.grad.requires_grad
    assert g is x.grad  # accumulated in place, as PyTorch does without create_graph


def test_create_graph_gives_second_derivatives():
    x = _leaf(2.0)
    y = x ** 3
    (dx,) = torch.autograd.grad(y, x, create_graph=True)
    assert dx.item() == 12.0 and dx.requires_grad and dx.grad_fn is not None
    (dxx,) = torch.autograd.grad(dx, x, create_graph=True)
    assert dxx.item() == 12.0  # 6x
    (dxxx,) = torch.autograd.grad(dxx, x)
    assert dxxx.item() == 6.0


def test_backward_with_create_graph_then_backward_of_the_grad():
    x = _leaf(1.0, 2.0)
    (x.sin() * x).sum().backward(create_graph=True)
    g = x.grad  # cos(x) x + sin(x), with history
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    # d/dx (x cos x + sin x) = 2 cos x - x sin x
    expect = [(2 * v.cos() - v * v.sin()).item() for v in (torch.tensor(1.0), torch.tensor(2.0))]
    assert x.grad.tolist() == pytest.approx(expect)


def test_backward_inputs_only_accumulates_into_those():
    a, b = _leaf(1.0), _leaf(2.0)
    c = a * b
    d = c * 3
    d.backward(inputs=[a], retain_graph=True)
    assert a.grad.item() == 6.0 and b.grad is None
    c.retain_grad()
    d.backward(inputs=[b])
    assert a.grad.item() == 6.0 and b.grad.item() == 3.0


def test_backward_inputs_can_be_a_non_leaf():
    a = _leaf(1.0)
    c = a * 2
    (c * c).backward(inputs=[c])
    assert a.grad is None
    assert c.retains_grad  # as in PyTorch: stored like retain_grad, and reading it does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.grad.item() == 4.0


def test_grad_on_non_leaf_inputs_leaves_grad_attributes_alone():
    a = _leaf(1.0, 2.0)
    c = 2 * a + 1
    d = (c * c).sum()
    gc, ga = torch.autograd.grad(d, (c, a), retain_graph=True)
    assert gc.tolist() == [6.0, 10.0] and ga.tolist() == [12.0, 20.0]
    assert a.grad is None and c._grad is None
    c.retain_grad()  # a retain_grad() hook does fire during grad(), as in PyTorch
    torch.autograd.grad(d, a)
    assert a.grad is None and c.grad.tolist() == [6.0, 10.0]


def test_grad_runs_only_the_needed_part_of_the_graph():
    a, b = _leaf(1.0), _leaf(2.0)
    side = []
    pa = a * 2
    pb = b * 3
    pb.register_hook(lambda g: side.append("b path ran"))
    (ga,) = torch.autograd.grad(pa + pb, a)
    assert ga.item() == 2.0 and side == []


def test_multiple_roots():
    x = _leaf(1.0, 2.0)
    y1, y2 = (x * 2).sum(), (x * x).sum()
    torch.autograd.backward([y1, y2])
    assert x.grad.tolist() == [4.0, 6.0]
    x2 = _leaf(1.0, 2.0)
    torch.autograd.backward([x2 * 2, x2 * x2], [torch.ones(2), torch.tensor([1.0, 0.0])])
    assert x2.grad.tolist() == [4.0, 2.0]


def test_integer_gradients_do_not_flow_and_none_edges_are_skipped():
    x = _leaf(1.5, -2.0)
    i = torch.tensor([1, 2])
    y = (x * i).sum()  # i has no edge
    y.backward()
    assert x.grad.tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------- hooks
def test_tensor_hooks_run_in_registration_order_and_chain():
    x = _leaf(1.0)
    y = x * 2
    log = []
    y.register_hook(lambda g: log.append(("first", g.item())))
    y.register_hook(lambda g: g * 10)  # replaces the gradient for what follows
    y.register_hook(lambda g: log.append(("third", g.item())))
    y.backward()
    assert log == [("first", 1.0), ("third", 10.0)]
    assert x.grad.item() == 20.0


def test_hook_handle_remove():
    x = _leaf(1.0)
    y = x * 2
    h = y.register_hook(lambda g: g * 100)
    y.backward(retain_graph=True)
    assert x.grad.item() == 200.0
    h.remove()
    h.remove()  # removing twice is harmless
    x.grad = None
    y.backward()
    assert x.grad.item() == 2.0


def test_hook_handle_as_context_manager():
    x = _leaf(1.0)
    y = x * 2
    with y.register_hook(lambda g: g * 0):
        y.backward(retain_graph=True)
    assert x.grad.item() == 0.0
    y.backward()
    assert x.grad.item() == 2.0


def test_leaf_hooks_see_the_summed_gradient_before_accumulation():
    x = _leaf(1.0, 2.0)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    x.register_hook(lambda g: g * 2)
    (x * 3 + x).sum().backward()
    assert seen == [[4.0, 4.0]]
    assert x.grad.tolist() == [8.0, 8.0]


def test_hooks_survive_across_backward_calls_on_leaves():
    x = _leaf(1.0)
    calls = []
    x.register_hook(lambda g: calls.append(g.item()))
    (x * 2).backward()
    (x * 5).backward()
    assert calls == [2.0, 5.0]


def test_node_hooks_and_prehooks():
    x = _leaf(1.0, 2.0)
    y = x * 3
    z = y.sum()
    log = []
    y.grad_fn.register_prehook(lambda gout: log.append(("pre", [g.tolist() for g in gout])))
    y.grad_fn.register_hook(lambda gin, gout: log.append(("post", gin[0].tolist())))
    z.backward()
    assert log == [("pre", [[1.0, 1.0]]), ("post", [3.0, 3.0])]


def test_retain_grad():
    a = _leaf(1.0, 2.0)
    c = a * a
    d = (c * 3).sum()
    c.retain_grad()
    c.retain_grad()  # twice is a no-op
    assert c.retains_grad and not a.retains_grad
    d.backward()
    assert c.grad.tolist() == [3.0, 3.0] and c.grad.grad_fn is None
    a.retain_grad()  # no-op on a leaf
    assert not a.retains_grad


def test_retain_grad_sees_the_gradient_after_hooks():
    a = _leaf(1.0)
    c = a * 2
    c.retain_grad()
    c.register_hook(lambda g: g + 1)
    c.backward()
    assert c.grad.item() == 2.0 and a.grad.item() == 4.0


# ----------------------------------------------------------------------------- storage and versions
def test_detach_shares_storage_and_version_counter():
    a = _leaf(1.0, 2.0)
    c = a * 2
    d = c.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d.add_(1)
    assert c.tolist() == [3.0, 5.0]  # PyTorch: detach() shares memory (the spec says it copies)
    assert c._version == d._version == 1
    c.mul_(2)
    assert d.tolist() == [6.0, 10.0] and d._version == 2


def test_data_shares_storage():
    w = _leaf(1.0, 2.0)
    w.data.mul_(3)  # the old idiom for an untracked update
    assert w.tolist() == [3.0, 6.0] and w.is_leaf and w.requires_grad


def test_detach_in_place():
    a = _leaf(1.0, 2.0)
    c = a * 2
    assert c.detach_() is c
    assert c.is_leaf and not c.requires_grad and c.grad_fn is None
    assert c.tolist() == [2.0, 4.0]


def test_version_counter_counts_in_place_ops():
    x = torch.zeros(3)
    assert x._version == 0
    x.add_(1)
    x.mul_(2)
    x[0] = 5.0
    x.zero_()
    assert x._version == 4
    y = x + 1  # out of place: a new counter
    assert y._version == 0 and x._version == 4


def test_in_place_op_on_a_non_leaf_rebases_its_history():
    x = _leaf(1.0, 2.0)
    y = x * 1
    y.mul_(3)
    assert y.grad_fn.name() == "MulBackward0"
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_in_place_exp_reads_the_saved_result_at_its_new_version():
    x = _leaf(0.0, 1.0)
    y = x * 1
    y.exp_()  # exp saves its output; that output is y itself, at version 1
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([1.0, 2.718281828459045])


def test_setitem_is_differentiable():
    x = _leaf(1.0, 2.0, 3.0)
    v = _leaf(10.0)
    y = x * 1
    y[1] = v[0] * 2
    assert y.grad_fn.name() == "CopySlices"
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0] and v.grad.tolist() == [4.0]


# ----------------------------------------------------------------------------- graph structure
def _describe(fn):
    """(name, (next functions...)) -- PyTorch's C++ nodes print with a namespace prefix."""
    if fn is None:
        return None
    name = fn.name().replace("torch::autograd::", "")
    return (name, tuple(_describe(n) for n, _ in fn.next_functions))


def _dev_set(y, v):
    y[0] = v
    return y


# expressions over a, b (vectors of 3) and m (2x3), all requiring grad; the same in tracegrad
# and PyTorch (where graphs differ -- next_functions entries for Python scalars/index tensors,
# ops PyTorch builds from other kernels -- the difference is listed in docs/autograd.md)
COMMON = {
    "spec": (lambda t, a, b, m: 2 * a + 3 * b + 1,
             ("AddBackward0", (("AddBackward0", (("MulBackward0", (("AccumulateGrad", ()), None)),
                                                 ("MulBackward0", (("AccumulateGrad", ()), None)))),
                               None))),
    "mul": (lambda t, a, b, m: a * b, ("MulBackward0", (("AccumulateGrad", ()),) * 2)),
    "div": (lambda t, a, b, m: a / b, ("DivBackward0", (("AccumulateGrad", ()),) * 2)),
    "sub": (lambda t, a, b, m: a - b, ("SubBackward0", (("AccumulateGrad", ()),) * 2)),
    "neg": (lambda t, a, b, m: -a, ("NegBackward0", (("AccumulateGrad", ()),))),
    "exp": (lambda t, a, b, m: a.exp(), ("ExpBackward0", (("AccumulateGrad", ()),))),
    "log": (lambda t, a, b, m: a.log(), ("LogBackward0", (("AccumulateGrad", ()),))),
    "tanh": (lambda t, a, b, m: a.tanh(), ("TanhBackward0", (("AccumulateGrad", ()),))),
    "sigmoid": (lambda t, a, b, m: a.sigmoid(), ("SigmoidBackward0", (("AccumulateGrad", ()),))),
    "relu": (lambda t, a, b, m: a.relu(), ("ReluBackward0", (("AccumulateGrad", ()),))),
    "pow": (lambda t, a, b, m: a ** b, ("PowBackward1", (("AccumulateGrad", ()),) * 2)),
    "sum": (lambda t, a, b, m: a.sum(), ("SumBackward0", (("AccumulateGrad", ()),))),
    "sum_dim": (lambda t, a, b, m: m.sum(0), ("SumBackward1", (("AccumulateGrad", ()),))),
    "mean": (lambda t, a, b, m: a.mean(), ("MeanBackward0", (("AccumulateGrad", ()),))),
    "mean_dim": (lambda t, a, b, m: m.mean(1), ("MeanBackward1", (("AccumulateGrad", ()),))),
    "dot": (lambda t, a, b, m: a @ b, ("DotBackward0", (("AccumulateGrad", ()),) * 2)),
    "mm": (lambda t, a, b, m: m @ m.transpose(0, 1),
           ("MmBackward0", (("AccumulateGrad", ()), ("TransposeBackward0", (("AccumulateGrad", ()),))))),
    "view": (lambda t, a, b, m: m.view(6), ("ViewBackward0", (("AccumulateGrad", ()),))),
    "reshape": (lambda t, a, b, m: m.reshape(-1), ("ViewBackward0", (("AccumulateGrad", ()),))),
    "permute": (lambda t, a, b, m: m.permute(1, 0), ("PermuteBackward0", (("AccumulateGrad", ()),))),
    "unsqueeze": (lambda t, a, b, m: a.unsqueeze(0), ("UnsqueezeBackward0", (("AccumulateGrad", ()),))),
    "select": (lambda t, a, b, m: m[0], ("SelectBackward0", (("AccumulateGrad", ()),))),
    "slice": (lambda t, a, b, m: m[:, 1:], ("SliceBackward0", (("AccumulateGrad", ()),))),
    "cat": (lambda t, a, b, m: t.cat([a, b]), ("CatBackward0", (("AccumulateGrad", ()),) * 2)),
    "stack": (lambda t, a, b, m: t.stack([a, b]), ("StackBackward0", (("AccumulateGrad", ()),) * 2)),
    "clamp": (lambda t, a, b, m: a.clamp(-1, 1), ("ClampBackward1", (("AccumulateGrad", ()),))),
    "max": (lambda t, a, b, m: a.max(), ("MaxBackward1", (("AccumulateGrad", ()),))),
    "max_dim": (lambda t, a, b, m: m.max(0).values, ("MaxBackward0", (("AccumulateGrad", ()),))),
    "softmax": (lambda t, a, b, m: a.softmax(0), ("SoftmaxBackward0", (("AccumulateGrad", ()),))),
    "log_softmax": (lambda t, a, b, m: a.log_softmax(0),
                    ("LogSoftmaxBackward0", (("AccumulateGrad", ()),))),
    "clone": (lambda t, a, b, m: a.clone(), ("CloneBackward0", (("AccumulateGrad", ()),))),
    "to_double": (lambda t, a, b, m: a.double(), ("ToCopyBackward0", (("AccumulateGrad", ()),))),
    "expand": (lambda t, a, b, m: a[:1].expand(3),
               ("ExpandBackward0", (("SliceBackward0", (("AccumulateGrad", ()),)),))),
    "maximum": (lambda t, a, b, m: t.maximum(a, b), ("MaximumBackward0", (("AccumulateGrad", ()),) * 2)),
    "add_": (lambda t, a, b, m: (a * 1).add_(b),
             ("AddBackward0", (("MulBackward0", (("AccumulateGrad", ()), None)), ("AccumulateGrad", ())))),
    "setitem": (lambda t, a, b, m: _dev_set(a * 1, b[1]),
                ("CopySlices", (("MulBackward0", (("AccumulateGrad", ()), None)),
                                ("SelectBackward0", (("AccumulateGrad", ()),))))),
}


def _inputs(t):
    return (t.tensor([1.0, 2.0, 3.0], requires_grad=True), t.tensor([4.0, 5.0, 6.0], requires_grad=True),
            t.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True))


@pytest.mark.parametrize("name", list(COMMON))
def test_grad_fn_structure(name):
    fn, expect = COMMON[name]
    assert _describe(fn(torch, *_inputs(torch)).grad_fn) == expect


@pytest.mark.parametrize("name", list(COMMON))
def test_grad_fn_structure_matches_pytorch(name, torch_ref):
    fn, _ = COMMON[name]
    ours = _describe(fn(torch, *_inputs(torch)).grad_fn)
    assert ours == _describe(fn(torch_ref, *_inputs(torch_ref)).grad_fn)


def test_next_functions_point_at_the_leaf_accumulators():
    a, b = _leaf(1.0), _leaf(2.0)
    c = a * b
    (na, ia), (nb, ib) = c.grad_fn.next_functions
    assert isinstance(na, AccumulateGrad) and na.variable is a and ia == 0
    assert nb.variable is b
    assert (a * 3).grad_fn.next_functions[0][0] is na  # one accumulator per leaf
    assert "MulBackward0 object at 0x" in repr(c.grad_fn)


def test_leaves_and_no_grad_inputs_have_no_grad_fn():
    a = _leaf(1.0)
    c = torch.tensor([1.0]) * 2
    assert a.grad_fn is None and c.grad_fn is None and not c.requires_grad
    assert (a * c).grad_fn.next_functions[1] == (None, 0)


def test_calling_a_node_directly():
    x = _leaf(1.0, 2.0)
    y = x * torch.tensor([3.0, 4.0])
    gx, gy = y.grad_fn(torch.ones(2))
    assert gx.tolist() == [3.0, 4.0] and gy is None


# ----------------------------------------------------------------------------- one-node graphs
def _one_node(hook=None):
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    out = a * b  # MulBackward0 over two AccumulateGrads: the one-node shortcut's shape
    if hook == "leaf":
        a.register_hook(lambda g: g * 10)
    elif hook == "root":
        out.register_hook(lambda g: g * 10)
    elif hook == "retain":
        out.retain_grad()
    elif hook == "node":
        out.grad_fn.register_prehook(lambda gs: (gs[0] * 10,))
    return a, b, out


def test_one_node_graph_skips_the_general_walk(monkeypatch):
    from tracegrad.autograd import engine

    def general(*args, **kwargs):
        raise AssertionError("the general engine ran")
    monkeypatch.setattr(engine, "run_backward", general)
    a, b, out = _one_node()
    out.backward(retain_graph=True)
    out.backward()
    assert (a.grad.item(), b.grad.item()) == (6.0, 4.0)  # accumulated twice
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()


@pytest.mark.parametrize("hook, expect", [("leaf", (30.0, 2.0)), ("root", (30.0, 20.0)),
                                          ("retain", (3.0, 2.0)), ("node", (30.0, 20.0))])
def test_one_node_graph_with_hooks_runs_them(hook, expect):
    a, b, out = _one_node(hook)
    out.backward()
    assert (a.grad.item(), b.grad.item()) == expect
    if hook == "retain":
        assert out.grad.item() == 1.0


def test_one_node_graph_with_the_same_leaf_twice_sums_before_hooks():
    x = torch.tensor(3.0, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.item()))
    (x * x).backward()
    assert x.grad.item() == 6.0 and seen == [6.0]
