"""The layer functions and modules against PyTorch: forward values, gradients of every input,
grad_fn names, reprs, buffers, hooks and errors. (The registry tests check each op's rules
against jax and finite differences; these check the public signatures and defaults.)"""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(0)


def _pos(*s):
    return R.uniform(0.05, 0.95, s)


def _n(*s):
    return R.standard_normal(s)


IDX = np.array([[1, 0, 3], [2, 2, 4]])
MASK = np.tril(np.ones((5, 5), bool)) | np.eye(5, k=1, dtype=bool)

# (name, arrays (float inputs that require grad), constants, kwargs)
CASES = [
    ("conv2d", [_n(2, 3, 6, 5), _n(4, 3, 3, 2), _n(4)], [], {}),
    ("conv2d", [_n(2, 4, 7, 6), _n(6, 2, 3, 3)], [], dict(stride=2, padding=1, groups=2)),
    ("conv2d", [_n(3, 7, 6), _n(2, 3, 2, 3)], [], dict(padding="same", dilation=2)),
    ("conv2d", [_n(1, 2, 5, 5), _n(3, 2, 3, 3)], [], dict(padding="valid", stride=(1, 2))),
    ("conv1d", [_n(2, 3, 9), _n(4, 3, 3), _n(4)], [], dict(stride=2, padding=2)),
    ("conv1d", [_n(2, 4, 8), _n(4, 1, 4)], [], dict(padding="same", groups=4)),
    ("conv_transpose2d", [_n(2, 4, 4, 3), _n(4, 3, 3, 2), _n(3)], [],
     dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", [_n(1, 4, 3, 3), _n(4, 1, 2, 2)], [], dict(groups=2, dilation=2)),
    ("conv_transpose1d", [_n(2, 3, 5), _n(3, 2, 3), _n(2)], [], dict(stride=3)),
    ("max_pool2d", [_n(2, 3, 7, 6)], [], dict(kernel_size=2)),
    ("max_pool2d", [_n(2, 3, 7, 6)], [], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", [_n(3, 7, 6)], [], dict(kernel_size=(3, 2), stride=1, dilation=(2, 1))),
    ("max_pool1d", [_n(2, 3, 9)], [], dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", [_n(2, 3, 7, 6)], [], dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", [_n(2, 3, 7, 6)], [], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                             count_include_pad=False)),
    ("avg_pool2d", [_n(2, 3, 6, 6)], [], dict(kernel_size=2, divisor_override=3)),
    ("avg_pool1d", [_n(2, 3, 9)], [], dict(kernel_size=4, stride=2, padding=2)),
    ("adaptive_avg_pool2d", [_n(2, 3, 7, 6)], [], dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", [_n(2, 3, 7, 6)], [], dict(output_size=1)),
    ("adaptive_avg_pool1d", [_n(2, 3, 7)], [], dict(output_size=3)),
    ("pad", [_n(2, 3, 4, 5)], [], dict(pad=(1, 2, 0, 3))),
    ("pad", [_n(2, 3, 4, 5)], [], dict(pad=(1, -2), value=1.5)),
    ("pad", [_n(2, 3, 4, 5)], [], dict(pad=(1, 2, 3, 1), mode="reflect")),
    ("pad", [_n(2, 3, 5)], [], dict(pad=(2, 1), mode="replicate")),
    ("pad", [_n(2, 3, 5)], [], dict(pad=(2, 1), mode="circular")),
    ("layer_norm", [_n(3, 4, 5), _n(4, 5), _n(4, 5)], [], dict(normalized_shape=(4, 5))),
    ("layer_norm", [_n(3, 5)], [], dict(normalized_shape=(5,), eps=1e-3)),
    ("group_norm", [_n(2, 6, 3, 2), _n(6), _n(6)], [], dict(num_groups=3)),
    ("gelu", [_n(20) * 3], [], {}),
    ("gelu", [_n(20) * 3], [], dict(approximate="tanh")),
    ("silu", [_n(20) * 3], [], {}),
    ("leaky_relu", [_n(20)], [], dict(negative_slope=0.2)),
    ("elu", [_n(20)], [], dict(alpha=0.5)),
    ("selu", [_n(20)], [], {}),
    ("celu", [_n(20)], [], dict(alpha=2.0)),
    ("softplus", [_n(20) * 3], [], dict(beta=2.0, threshold=2.0)),
    ("hardtanh", [_n(20)], [], dict(min_val=-0.5, max_val=0.7)),
    ("relu6", [_n(20) * 5], [], {}),
    ("binary_cross_entropy", [_pos(3, 4), _pos(3, 4)], [], {}),
    ("binary_cross_entropy", [_pos(3, 4), _pos(3, 4)], [_pos(4)], dict(reduction="sum")),
    ("binary_cross_entropy_with_logits", [_n(3, 4), _pos(3, 4)], [], {}),
    ("binary_cross_entropy_with_logits", [_n(3, 4), _pos(3, 4)], [_pos(3, 4)],
     dict(reduction="none")),
    ("l1_loss", [_n(3, 4), _n(3, 4)], [], {}),
    ("l1_loss", [_n(3, 4), _n(3, 4)], [], dict(reduction="none")),
    ("smooth_l1_loss", [_n(3, 4), _n(3, 4)], [], dict(beta=0.5)),
    ("smooth_l1_loss", [_n(3, 4), _n(3, 4)], [], dict(beta=0.0, reduction="sum")),
    ("huber_loss", [_n(3, 4), _n(3, 4)], [], dict(delta=0.5)),
    ("kl_div", [_n(3, 4)], [_pos(3, 4)], dict(reduction="batchmean")),
    ("kl_div", [_n(3, 4), _n(3, 4)], [], dict(reduction="sum", log_target=True)),
    ("scaled_dot_product_attention", [_n(2, 3, 5, 4), _n(2, 3, 5, 4), _n(2, 3, 5, 4)], [], {}),
    ("scaled_dot_product_attention", [_n(2, 5, 4), _n(2, 6, 4), _n(2, 6, 3)], [],
     dict(scale=0.3)),
    ("scaled_dot_product_attention", [_n(2, 3, 5, 4), _n(2, 3, 5, 4), _n(2, 3, 5, 4)], [],
     dict(is_causal=True)),
    ("scaled_dot_product_attention", [_n(2, 5, 4), _n(2, 5, 4), _n(2, 5, 4)], [MASK], {}),
]


# composed from tracegrad ops (grad_fn MatmulBackward0), not PyTorch's fused CPU kernel
GRAD_FN_DIFFERS = {"scaled_dot_product_attention"}


def _call(lib, name, arrays, consts, kwargs, dtype):
    F_ = F if lib is tg else TF
    ins = [lib.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    cs = [lib.tensor(c) if c.dtype == bool else lib.tensor(c, dtype=dtype) for c in consts]
    kw = dict(kwargs)
    if name == "binary_cross_entropy_with_logits" and cs:
        kw["pos_weight"] = cs.pop()
    if name in ("layer_norm", "group_norm"):  # (input, shape or groups, weight, bias)
        second = kw.pop("normalized_shape" if name == "layer_norm" else "num_groups")
        return ins, getattr(F_, name)(ins[0], second, *ins[1:], **kw)
    return ins, getattr(F_, name)(*ins, *cs, **kw)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,arrays,consts,kwargs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_functional_matches_torch(name, arrays, consts, kwargs, dtype):
    ours_in, ours = _call(tg, name, arrays, consts, kwargs, getattr(tg, dtype))
    th_in, th = _call(torch, name, arrays, consts, kwargs, getattr(torch, dtype))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    assert tuple(ours.shape) == tuple(th.shape)
    assert str(ours.dtype).split(".")[-1] == str(th.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), th.detach().numpy(), **tol)
    if name not in GRAD_FN_DIFFERS:
        assert ours.grad_fn.name() == th.grad_fn.name().split("::")[-1]
    v = np.random.default_rng(1).standard_normal(tuple(th.shape))
    og = tg.autograd.grad(ours, ours_in, tg.tensor(v, dtype=ours.dtype), allow_unused=True)
    tgr = torch.autograd.grad(th, th_in, torch.tensor(v, dtype=th.dtype), allow_unused=True)
    for k, (a, b) in enumerate(zip(og, tgr)):
        if b is None:
            assert a is None or not np.any(a.numpy()), f"input {k}"
            continue
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"gradient of input {k}", **tol)


def test_max_pool_indices_and_ties_match_torch():
    x = np.maximum(_n(2, 3, 6, 6), 0)  # ReLU'd: many tied zeros in a window
    ours, idx = F.max_pool2d(tg.tensor(x, requires_grad=True), 3, 2, 1, return_indices=True)
    th, tidx = TF.max_pool2d(torch.tensor(x, requires_grad=True), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype is tg.int64
    xa, xb = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.max_pool2d(xa, 2).sum().backward()
    TF.max_pool2d(xb, 2).sum().backward()
    np.testing.assert_array_equal(xa.grad.numpy(), xb.grad.numpy())
    _, i1 = F.max_pool1d(tg.tensor(x[0]), 2, return_indices=True)
    _, t1 = TF.max_pool1d(torch.tensor(x[0]), 2, return_indices=True)
    np.testing.assert_array_equal(i1.numpy(), t1.numpy())


def test_batch_norm_running_stats_and_eval_match_torch():
    x = _n(6, 3, 4)
    w, b = _n(3), _n(3)
    rm, rv = tg.zeros(3, dtype=tg.float64), tg.ones(3, dtype=tg.float64)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(2):
        xa = tg.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        oa = F.batch_norm(xa, rm, rv, tg.tensor(w), tg.tensor(b), training=True, momentum=0.3)
        ob = TF.batch_norm(xb, trm, trv, torch.tensor(w), torch.tensor(b), training=True,
                           momentum=0.3)
        np.testing.assert_allclose(oa.detach().numpy(), ob.detach().numpy(), rtol=1e-10)
        (oa * tg.tensor(x)).sum().backward()
        (ob * torch.tensor(x)).sum().backward()
        np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-12)
    wa, wb = tg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    oa = F.batch_norm(tg.tensor(x), rm, rv, wa, None, training=False)
    ob = TF.batch_norm(torch.tensor(x), trm, trv, wb, None, training=False)
    np.testing.assert_allclose(oa.detach().numpy(), ob.detach().numpy(), rtol=1e-10)
    assert oa.grad_fn.name() == ob.grad_fn.name() == "NativeBatchNormBackward0"
    oa.sum().backward()
    ob.sum().backward()
    np.testing.assert_allclose(wa.grad.numpy(), wb.grad.numpy(), rtol=1e-10)


def test_embedding_padding_idx_and_one_hot_match_torch():
    w = _n(5, 3)
    wa, wb = tg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    oa = F.embedding(tg.tensor(IDX), wa, padding_idx=2)
    ob = TF.embedding(torch.tensor(IDX), wb, padding_idx=2)
    np.testing.assert_array_equal(oa.detach().numpy(), ob.detach().numpy())
    assert oa.grad_fn.name() == "EmbeddingBackward0"
    oa.sum().backward()
    ob.sum().backward()
    np.testing.assert_array_equal(wa.grad.numpy(), wb.grad.numpy())
    np.testing.assert_array_equal(F.one_hot(tg.tensor([0, 3, 1])).numpy(),
                                  TF.one_hot(torch.tensor([0, 3, 1])).numpy())
    assert F.one_hot(tg.tensor([0, 1]), 4).shape == (2, 4)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(tg.tensor([5]), wa)


def test_dropout_masks_scale_and_eval_identity():
    x = tg.ones(1000)
    y = F.dropout(x, 0.25)
    vals = set(np.unique(y.numpy()).tolist())
    assert vals <= {0.0, float(np.float32(1 / 0.75))} and len(vals) == 2
    assert F.dropout(x, 0.25, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    xr = tg.ones(5, requires_grad=True)
    out = F.dropout(xr, 0.5)
    assert out.grad_fn.name() == "MulBackward0"
    out.sum().backward()
    np.testing.assert_array_equal(xr.grad.numpy(), out.detach().numpy())
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(x, 1.5)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: F.conv2d(tg.zeros(2, 3, 6, 6), tg.zeros(4, 5, 3, 3)), RuntimeError,
     r"Given groups=1, weight of size \[4, 5, 3, 3\], expected input\[2, 3, 6, 6\] to have 5 "
     r"channels, but got 3 channels instead"),
    (lambda: F.conv2d(tg.zeros(6, 6), tg.zeros(4, 3, 3, 3)), RuntimeError,
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: "
     r"\[6, 6\]"),
    (lambda: F.conv2d(tg.zeros(1, 3, 6, 6), tg.zeros(4, 3, 3, 3), stride=2, padding="same"),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(tg.zeros(1, 3, 6, 6), tg.zeros(4, 3, 9, 9)), RuntimeError,
     "Kernel size can't be greater than actual input size"),
    (lambda: F.conv2d(tg.zeros(1, 3, 6, 6, dtype=tg.float64), tg.zeros(4, 3, 3, 3)),
     RuntimeError, "expected scalar type Double but found Float"),
    (lambda: F.max_pool2d(tg.zeros(1, 3, 6, 6), 4, padding=3), RuntimeError,
     "pad should be at most half of effective kernel size, but got pad=3, kernel_size=4 and "
     "dilation=1"),
    (lambda: F.pad(tg.zeros(1, 2, 3, 3), (3, 3), mode="reflect"), RuntimeError,
     "Padding size should be less than the corresponding input dimension"),
    (lambda: F.batch_norm(tg.zeros(1, 3), None, None, training=True), ValueError,
     "Expected more than 1 value per channel when training"),
    (lambda: F.group_norm(tg.zeros(2, 5, 3), 2), RuntimeError,
     "Expected number of channels in input to be divisible by num_groups"),
    (lambda: F.gelu(tg.zeros(2), approximate="erf"), RuntimeError,
     "approximate argument must be either none or tanh"),
])
def test_errors_are_pytorchs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


MODULES = [
    ("Conv2d", (3, 6, 5), {}), ("Conv2d", (4, 6, 3), dict(padding="same", bias=False, groups=2)),
    ("Conv1d", (2, 4, 3), dict(stride=2, padding_mode="reflect", padding=1)),
    ("ConvTranspose2d", (4, 2, 3), dict(stride=2, output_padding=1)),
    ("MaxPool2d", (2,), {}), ("MaxPool1d", (3,), dict(stride=1)), ("AvgPool2d", (2,), {}),
    ("AvgPool1d", (2,), {}), ("AdaptiveAvgPool2d", ((5, 7),), {}), ("BatchNorm1d", (3,), {}),
    ("BatchNorm2d", (3,), dict(momentum=None, affine=False)), ("LayerNorm", (4,), {}),
    ("GroupNorm", (2, 4), {}), ("Dropout", (), {}), ("Embedding", (10, 3), dict(padding_idx=1)),
    ("GELU", (), dict(approximate="tanh")), ("SiLU", (), {}), ("LeakyReLU", (0.2,), {}),
    ("ELU", (), {}), ("Softplus", (), {}), ("Hardtanh", (), {}), ("ReLU6", (), {}),
    ("Unflatten", (1, (2, 3)), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_module_repr_and_parameters_match_torch(name, args, kwargs):
    ours, th = getattr(tg.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(th)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in th.named_parameters()]
    assert list(ours.state_dict()) == list(th.state_dict())


def test_modules_forward_as_torch_with_copied_weights():
    def pair():
        return [(tg.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(1, 4, 3, padding=1)),
                (tg.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)),
                (tg.nn.GELU(), torch.nn.GELU()), (tg.nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                (tg.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
                (tg.nn.AdaptiveAvgPool2d((1, 2)), torch.nn.AdaptiveAvgPool2d((1, 2))),
                (tg.nn.Flatten(), torch.nn.Flatten()), (tg.nn.LayerNorm(8), torch.nn.LayerNorm(8))]
    mods = pair()
    ours = tg.nn.Sequential(*[a for a, _ in mods])
    th = torch.nn.Sequential(*[b for _, b in mods])
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in th.state_dict().items()})
    x = _n(3, 1, 6, 6).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(th, mode)()
        a, b = ours(tg.tensor(x)), th(torch.tensor(x))
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    for (k, va), (_, vb) in zip(ours.state_dict().items(), th.state_dict().items()):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_batchnorm_buffers_persist_and_cumulative_momentum():
    bn = tg.nn.BatchNorm1d(2, momentum=None)
    tb = torch.nn.BatchNorm1d(2, momentum=None)
    for x in (_n(4, 2), _n(5, 2) + 1):
        bn(tg.tensor(x, dtype=tg.float32))
        tb(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(bn.running_mean.numpy(), tb.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), tb.running_var.numpy(), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 2 and bn.num_batches_tracked.dtype is tg.int64
    m = tg.nn.Module()
    m.register_buffer("keep", tg.ones(2))
    m.register_buffer("tmp", tg.ones(2), persistent=False)
    assert list(m.state_dict()) == ["keep"]
    assert [n for n, _ in m.named_buffers()] == ["keep", "tmp"]


def test_containers():
    d = tg.nn.ModuleDict({"a": tg.nn.Linear(2, 3), "b": tg.nn.ReLU()})
    d["c"] = tg.nn.Linear(3, 1)
    assert list(d.keys()) == ["a", "b", "c"] and len(d) == 3 and "b" in d
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias", "c.weight", "c.bias"]
    pl = tg.nn.ParameterList([tg.ones(2), tg.nn.Parameter(tg.zeros(3))])
    assert isinstance(pl[0], tg.nn.Parameter) and len(pl) == 2
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    assert repr(pl).replace("tracegrad.", "torch.") == repr(
        torch.nn.ParameterList([torch.ones(2), torch.zeros(3)]))
    pd = tg.nn.ParameterDict({"w": tg.ones(2)})
    pd["v"] = tg.zeros(1)
    assert list(pd.keys()) == ["w", "v"] and isinstance(pd["v"], tg.nn.Parameter)
    assert list(pd.state_dict()) == ["w", "v"]


def test_full_backward_hook_matches_torch():
    def run(lib):
        m = lib.nn.Linear(3, 2)
        with lib.no_grad():
            m.weight.copy_(lib.tensor([[1., 2, 3], [4, 5, 6]]))
        log = []
        m.register_full_backward_hook(lambda mod, gi, go: log.append(
            ([g.tolist() for g in gi], [g.tolist() for g in go])))
        x = lib.tensor([[1., 1, 1]], requires_grad=True)
        (m(x) * lib.tensor([[1., 2]])).sum().backward()
        h = m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 10,))
        x.grad = None
        m(x).sum().backward()
        log.append(x.grad.tolist())
        h.remove()
        x.grad = None
        m(x).sum().backward()
        log.append(x.grad.tolist())
        return log
    assert run(tg) == run(torch)


def test_compiled_cnn_training_step_matches_eager():
    tg.manual_seed(0)
    net = tg.nn.Sequential(tg.nn.Conv2d(1, 4, 3), tg.nn.BatchNorm2d(4), tg.nn.ReLU(),
                           tg.nn.MaxPool2d(2), tg.nn.Flatten(), tg.nn.Linear(36, 3))
    import copy
    ref = copy.deepcopy(net)
    x = tg.randn(4, 1, 8, 8)
    step = tg.compile(lambda x: net(x).sum())
    for _ in range(3):
        loss = step(x)
        loss.backward()
        ref_loss = ref(x).sum()
        ref_loss.backward()
        np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
        np.testing.assert_allclose(net[1].running_mean.numpy(), ref[1].running_mean.numpy(),
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(net[0].weight.grad.numpy(), ref[0].weight.grad.numpy(),
                                   rtol=1e-4, atol=1e-5)
    assert step.stats["traces"] == 1 and step.stats["graph_breaks"] == 0
    assert net[1].num_batches_tracked.item() == 3
