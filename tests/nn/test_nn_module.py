"""Module and Parameter: registration, traversal, state dicts, modes, repr, the spec's
freeze-and-finetune recipe."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
        self.fc = nn.Linear(5, 3)
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("scratch", torch.ones(2), persistent=False)

    def forward(self, x):
        return self.fc(self.body(x))


# ------------------------------------------------------------------------------ Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(torch.ones(2, 3))
    assert isinstance(p, torch.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert type(p * 2) is torch.Tensor
    assert not nn.Parameter(torch.ones(2), requires_grad=False).requires_grad


def test_parameter_repr_is_pytorchs():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


def test_parameter_shares_storage_with_its_data():
    t = torch.zeros(3)
    p = nn.Parameter(t)
    with torch.no_grad():
        p.add_(1)
    assert t.tolist() == [1.0, 1.0, 1.0]


def test_parameter_of_an_int_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(torch.tensor([1, 2]))
    assert nn.Parameter(torch.tensor([1, 2]), requires_grad=False).dtype is torch.int64


def test_parameter_gets_gradients_and_deepcopies_independently():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    (p * p).sum().backward()
    assert p.grad.tolist() == [2.0, 4.0]
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q.grad is None
    with torch.no_grad():
        q.mul_(3)
    assert p.tolist() == [1.0, 2.0] and q.tolist() == [3.0, 6.0]


# ------------------------------------------------------------------------------ registration
def test_setattr_registers_parameters_modules_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["body.0.weight", "body.0.bias",
                                                      "fc.weight", "fc.bias"]
    assert list(net.parameters(recurse=False)) == []
    assert [n for n, _ in net.named_children()] == ["body", "fc"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Sequential", "Linear", "ReLU",
                                                        "Linear"]
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())


def test_shared_parameters_are_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # Sequential, Linear (once), ReLU


def test_reassigning_replaces_the_registration():
    net = Net()
    net.fc = nn.Linear(5, 7)
    assert net(torch.randn(2, 6)).shape == (2, 7)
    net.extra = nn.Parameter(torch.zeros(1))
    assert "extra" in dict(net.named_parameters())
    del net.extra
    assert "extra" not in dict(net.named_parameters())
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'extra'"):
        net.extra


def test_assigning_a_plain_tensor_to_a_parameter_slot_raises():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"cannot assign 'tracegrad.FloatTensor' as parameter "
                                        r"'weight' \(tracegrad.nn.Parameter or None expected\)"):
        lin.weight = torch.ones(3, 2)
    assert isinstance(lin.weight, nn.Parameter)  # unchanged, and the module still works
    assert lin(torch.ones(1, 2)).shape == (1, 3)
    lin.bias = None
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]


def test_assigning_before_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(torch.ones(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Bad()


def test_non_module_into_a_module_slot_raises():
    net = Net()
    with pytest.raises(TypeError, match="as child module 'fc'"):
        net.fc = 3


def test_missing_forward_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        nn.Module()(1)


def test_forward_hooks_run_and_can_replace_the_output():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    h2 = lin.register_forward_hook(lambda m, args, out: out * 0)
    out = lin(torch.ones(1, 2))
    assert calls == ["pre"] and out.tolist() == [[0.0, 0.0]]
    h1.remove()
    h2.remove()
    assert lin(torch.ones(1, 2)).abs().sum().item() > 0
    assert calls == ["pre"]


# ------------------------------------------------------------------------------ modes, grads
def test_train_eval_propagate():
    net = Net()
    assert net.training and net.body[0].training
    net.eval()
    assert not net.training and not net.body[0].training and not net.fc.training
    net.train()
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    net = Net()
    net(torch.randn(4, 6)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=set_to_none)
    for p in net.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad.abs().sum().item() == 0 and not p.grad.requires_grad


def test_freeze_and_finetune_from_the_spec():
    # the spec's recipe: freeze everything, then replace the head; only the head trains
    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(32, 512), nn.ReLU())
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            return self.fc(self.features(x))

    model = Backbone()
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 100)
    out = model(torch.randn(4, 32))
    assert out.shape == (4, 100)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    assert model.fc.weight.grad is not None and model.fc.bias.grad is not None
    assert all(p.grad is None for p in model.features.parameters())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


def test_frozen_model_output_does_not_require_grad():
    model = nn.Sequential(nn.Linear(3, 3))
    model.requires_grad_(False)
    out = model(torch.randn(2, 3))
    assert not out.requires_grad and out.grad_fn is None


# ------------------------------------------------------------------------------ state dicts
def test_state_dict_keys_and_sharing():
    net = Net()
    sd = net.state_dict()
    # own tensors first, then submodules (PyTorch's order); non-persistent buffers are left out
    assert list(sd) == ["running", "body.0.weight", "body.0.bias", "fc.weight", "fc.bias"]
    assert not sd["fc.weight"].requires_grad and type(sd["fc.weight"]) is torch.Tensor
    with torch.no_grad():
        net.fc.bias.add_(1)
    assert np.allclose(sd["fc.bias"].numpy(), net.fc.bias.detach().numpy())  # shares storage
    assert net.state_dict(keep_vars=True)["fc.weight"] is net.fc.weight


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 6)
    assert np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    assert isinstance(b.fc.weight, nn.Parameter) and b.fc.weight.requires_grad
    assert b.fc.weight.is_leaf


def test_load_state_dict_strict_errors_read_like_pytorch():
    lin = nn.Linear(2, 3)
    before = lin.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError) as e:
        lin.load_state_dict({"weight": torch.ones(3, 4), "foo": torch.ones(1)})
    assert str(e.value) == (
        'Error(s) in loading state_dict for Linear:\n\tMissing key(s) in state_dict: "bias". '
        '\n\tUnexpected key(s) in state_dict: "foo". \n\tsize mismatch for weight: copying a '
        "param with shape tracegrad.Size([3, 4]) from checkpoint, the shape in current model is "
        "tracegrad.Size([3, 2]).")
    assert np.array_equal(lin.weight.detach().numpy(), before)
    res = lin.load_state_dict({"weight": torch.ones(3, 2), "foo": torch.ones(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["foo"]
    assert lin.weight.detach().numpy().tolist() == [[1.0, 1.0]] * 3


def test_to_double_keeps_parameter_objects():
    lin = nn.Linear(2, 2)
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype is torch.float64 and isinstance(w, nn.Parameter)
    assert lin(torch.ones(1, 2, dtype=torch.float64)).dtype is torch.float64
    lin.to(torch.float32)
    assert w.dtype is torch.float32


def test_deepcopy_makes_an_independent_model():
    net = Net()
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.fc.weight.zero_()
    assert net.fc.weight.abs().sum().item() > 0
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]


# ------------------------------------------------------------------------------ repr
def test_repr_nests_like_pytorch():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=6, out_features=5, bias=True)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (fc): Linear(in_features=5, out_features=3, bias=True)\n"
        ")")
    assert repr(nn.Module()) == "Module()"
    assert repr(nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Tanh()])) == (
        "ModuleList(\n  (0-1): 2 x ReLU()\n  (2): Tanh()\n)")


def test_repr_matches_torch():
    tnn = pytest.importorskip("torch").nn
    ours = nn.Sequential(OrderedDict(fc=nn.Linear(2, 3, bias=False), act=nn.Sigmoid(),
                                     out=nn.Sequential(nn.Identity(), nn.Flatten())))
    theirs = tnn.Sequential(OrderedDict(fc=tnn.Linear(2, 3, bias=False), act=tnn.Sigmoid(),
                                        out=tnn.Sequential(tnn.Identity(), tnn.Flatten())))
    assert repr(ours) == repr(theirs)
    assert repr(nn.CrossEntropyLoss()) == repr(tnn.CrossEntropyLoss())
