"""Every error of the eager core: PyTorch's exception type and wording, and after each one a
check that the tensors and the graph still work (a failed call must leave no half-done state).
``test_same_error_as_pytorch`` runs the cases in PyTorch too, when it is installed."""
from __future__ import annotations

import warnings

import pytest

import tracegrad as torch
from tracegrad import _device

SECOND_TIME = "Trying to backward through the graph a second time"


def _leaf():
    return torch.tensor([1.0, 2.0], requires_grad=True)


def test_second_backward_without_retain_graph():
    x = _leaf()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=SECOND_TIME + r".*Specify retain_graph=True"):
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]  # the failed call added nothing
    (x * x).sum().backward()  # a new forward builds a new graph
    assert x.grad.tolist() == [4.0, 8.0]


def test_second_grad_call_without_retain_graph():
    x = _leaf()
    y = (x * x).sum()
    torch.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        torch.autograd.grad(y, x)
    y2 = (x * x).sum()
    assert torch.autograd.grad(y2, x, retain_graph=True)[0].tolist() == [2.0, 4.0]
    assert torch.autograd.grad(y2, x)[0].tolist() == [2.0, 4.0]  # retained: works again


def test_implicit_grad_needs_a_scalar():
    x = _leaf()
    y = x * 3
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(torch.ones(2))  # the graph was not touched by the failed call
    assert x.grad.tolist() == [3.0, 3.0]


def test_backward_on_a_tensor_without_grad():
    t = torch.tensor([1.0])
    with pytest.raises(RuntimeError,
                       match="element 0 of tensors does not require grad and does not have a grad_fn"):
        t.backward()
    x = _leaf()
    (x * t).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0] and t.grad is None


def test_requires_grad_false_on_a_non_leaf():
    x = _leaf()
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf "
                                           "variables.*var_no_grad = var.detach()"):
        y.requires_grad = False
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    y.detach().requires_grad = False  # what the message suggests works


def test_in_place_on_a_leaf_that_requires_grad():
    x = _leaf()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an "
                                           "in-place operation"):
        x.add_(1)
    assert x.tolist() == [1.0, 2.0] and x._version == 0 and x.is_leaf
    with torch.no_grad():  # the usual way to update parameters
        x.add_(1)
    assert x.tolist() == [2.0, 3.0] and x._version == 1 and x.is_leaf
    (x * x).sum().backward()
    assert x.grad.tolist() == [4.0, 6.0]


def test_saved_tensor_modified_in_place():
    x = _leaf()
    a = x * 1
    b = a * a  # saves a (version 0)
    a.mul_(2)  # version 1
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient computation "
                                           r"has been modified by an inplace operation: "
                                           r"\[torch.FloatTensor \[2\]\], which is output 0 of "
                                           r"MulBackward0, is at version 1; expected version 0"):
        b.sum().backward()
    (a * a).sum().backward()  # recomputing from the new value works
    assert x.grad.tolist() == [8.0, 16.0]  # d/dx (2x)^2 = 8x


def test_saved_output_modified_in_place():
    x = _leaf()
    y = x.exp()  # exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"output 0 of ExpBackward0, is at version 1; expected "
                                           r"version 0"):
        y.sum().backward()
    x.exp().sum().backward()
    assert x.grad.tolist() == pytest.approx([2.718281828, 7.389056098])


def test_register_hook_on_a_tensor_without_grad():
    t = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require "
                                           "gradient"):
        t.register_hook(lambda g: g)
    seen = []
    t.requires_grad_()
    t.register_hook(seen.append)
    (t * 2).sum().backward()
    assert [g.tolist() for g in seen] == [[2.0, 2.0]]


def test_hook_that_changes_the_gradient_size():
    x = _leaf()
    y = x * 2

    def bad(g):
        return torch.ones(3)
    h = y.register_hook(bad)
    with pytest.raises(RuntimeError, match=r"hook 'bad' has changed the size of value"):
        y.sum().backward(retain_graph=True)
    h.remove()
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_numpy_on_a_tensor_that_requires_grad():
    x = _leaf()
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad. "
                                           r"Use tensor.detach\(\).numpy\(\) instead."):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 2.0]
    assert x.numpy(force=True).tolist() == [1.0, 2.0]


def test_grad_of_an_unused_input():
    x, unused = _leaf(), _leaf()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph. Set "
                                           "allow_unused=True"):
        torch.autograd.grad((x * x).sum(), (x, unused))
    gx, gu = torch.autograd.grad((x * x).sum(), (x, unused), allow_unused=True)
    assert gx.tolist() == [2.0, 4.0] and gu is None
    gx, gu = torch.autograd.grad((x * x).sum(), (x, unused), materialize_grads=True)
    assert gu.tolist() == [0.0, 0.0]


def test_grad_of_an_input_that_does_not_require_grad():
    x = _leaf()
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not require grad"):
        torch.autograd.grad(y, torch.tensor([1.0]))
    assert torch.autograd.grad(y, x)[0].tolist() == [2.0, 4.0]


@pytest.mark.parametrize("call", ["backward", "grad"])
def test_gradient_shape_mismatch(call):
    x = _leaf()
    y = x * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of "
                                           r"tracegrad.Size\(\[3\]\) and output\[0\] has a shape of "
                                           r"tracegrad.Size\(\[2\]\)"):
        if call == "backward":
            torch.autograd.backward(y, grad_tensors=torch.ones(3))
        else:
            torch.autograd.grad(y, x, torch.ones(3))
    torch.autograd.backward(y, grad_tensors=torch.ones(2))  # checked before running: graph intact
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_with_empty_inputs():
    x = _leaf()
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="'inputs' argument to backward\\(\\) cannot be empty"):
        y.backward(inputs=[])
    y.backward(inputs=[x])
    assert x.grad.tolist() == [2.0, 4.0]


def test_retain_grad_and_requires_grad_on_the_wrong_tensors():
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        torch.tensor([1.0]).retain_grad()
    i = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        i.requires_grad_()
    assert not i.requires_grad
    f = i.float().requires_grad_()
    (f * f).sum().backward()
    assert f.grad.tolist() == [2.0, 4.0]


@pytest.mark.skipif(_device._gpus(), reason="a GPU is visible: .cuda() works here")
def test_cuda_without_a_gpu():
    x = _leaf()
    with pytest.raises(RuntimeError, match="No CUDA GPUs are available"):
        x.cuda()
    with pytest.raises(RuntimeError, match="No CUDA GPUs are available"):
        torch.ones(2, device="cuda")
    assert not torch.cuda.is_available()
    assert x.device.type == "cpu"
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


@pytest.mark.gpu
@pytest.mark.skipif(not _device._gpus(), reason="needs a GPU visible to jax")
def test_mixed_devices():
    x = _leaf()
    g = torch.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found "
                                           "at least two devices, cuda(:0)? and cpu"):
        g + x
    y = (x.cuda() * g).sum()  # moving explicitly works, and the gradient flows back to cpu
    y.backward()
    assert x.grad.device.type == "cpu" and x.grad.tolist() == [1.0, 1.0]
    assert (g * torch.tensor(2.0)).device.type == "cuda"  # a 0-dim cpu tensor may mix


def test_bad_reshape():
    x = _leaf()
    with pytest.raises(RuntimeError, match=r"shape '\[3\]' is invalid for input of size 2"):
        x.reshape(3)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)
    x.reshape(2, 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_matmul_shape_mismatch():
    a = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)"):
        a @ torch.ones(2, 3)
    with pytest.raises(RuntimeError, match="both arguments to matmul need to be at least 1D"):
        a @ torch.tensor(2.0)
    (a @ torch.ones(3, 2)).sum().backward()
    assert a.grad.tolist() == [[2.0] * 3] * 2


def test_broadcast_mismatch():
    a = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor "
                                           r"b \(4\) at non-singleton dimension 1"):
        a + torch.ones(4)
    b = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast "
                                           r"shape \[2, 3\]"):
        b.add_(a.detach())
    assert b.shape == (3,) and b._version == 0
    (a + b).sum().backward()
    assert a.grad.tolist() == [[1.0] * 3] * 2


def test_index_out_of_range():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        x[:, 3]
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        x[torch.tensor([0, 2])]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        x.sum(2)
    x[1, -1].backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def test_item_of_a_tensor_with_several_elements():
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        _leaf().item()
    assert _leaf()[1].item() == 2.0


def test_reading_grad_of_a_non_leaf_warns():
    x = _leaf()
    y = x * 2
    y.sum().backward(retain_graph=True)
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf Tensor "
                                         "is being accessed.*use .retain_grad\\(\\)"):
        assert y.grad is None
    y.retain_grad()
    y.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # retained: no warning, and the gradient is there
        assert y.grad.tolist() == [1.0, 1.0]
        assert x.grad.tolist() == [4.0, 4.0]  # leaves never warn


# ----------------------------------------------------------------------------- vs PyTorch
def _cases(t):
    """(name, thunk, compare the message too) for errors both libraries raise."""
    def second():
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        y.backward()

    def nonleaf():
        (t.tensor([1.0], requires_grad=True) * 2).requires_grad = False

    def saved():
        x = t.tensor([1.0, 2.0], requires_grad=True)
        a = x * 1
        b = a * a
        a.mul_(2)
        b.sum().backward()
    x = t.tensor([1.0, 2.0], requires_grad=True)
    return [
        ("second backward", second, True),
        ("implicit grad", lambda: (x * 2).backward(), True),
        ("no grad_fn", lambda: t.tensor([1.0]).backward(), True),
        ("requires_grad on non-leaf", nonleaf, True),
        ("in-place leaf", lambda: x.add_(1), False),
        ("saved tensor version", saved, False),
        ("hook without grad", lambda: t.tensor([1.0]).register_hook(lambda g: g), True),
        ("numpy", lambda: x.numpy(), True),
        ("unused input", lambda: t.autograd.grad((x * 2).sum(), [x, t.ones(1, requires_grad=True)]),
         False),
        ("grad shape", lambda: t.autograd.backward(x * 2, t.ones(3)), False),
        ("reshape", lambda: x.reshape(3), True),
        ("mm", lambda: t.ones(2, 3) @ t.ones(2, 3), True),
        ("broadcast", lambda: t.ones(2, 3) + t.ones(4), True),
        ("in-place broadcast", lambda: t.ones(3).add_(t.ones(2, 3)), True),
        ("index", lambda: x[5], True),
        ("dim", lambda: x.sum(3), True),
        ("item", lambda: x.item(), True),
        ("retain_grad", lambda: t.tensor([1.0]).retain_grad(), True),
    ]


@pytest.mark.parametrize("k", range(len(_cases(torch))), ids=[c[0] for c in _cases(torch)])
def test_same_error_as_pytorch(k, torch_ref):
    name, ours, same_text = _cases(torch)[k]
    _, theirs, _ = _cases(torch_ref)[k]
    with pytest.raises(Exception) as a:
        ours()
    with pytest.raises(Exception) as b:
        theirs()
    assert a.type is b.type, f"{name}: {a.value!r} vs PyTorch's {b.value!r}"
    if same_text:
        assert str(a.value) == str(b.value).replace("torch.", "tracegrad.")


def test_is_grads_batched_is_refused_not_ignored():
    import tracegrad as tg
    x = tg.ones(2, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        tg.autograd.grad(y, x, is_grads_batched=True)
    assert tg.autograd.grad(y, x)[0].tolist() == [2.0, 2.0]  # the graph is still usable
