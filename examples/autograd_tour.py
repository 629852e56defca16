"""A tour of torch.autograd, section by section -- run on tracegrad.

    python examples/autograd_tour.py

It follows the cheat sheet this project implements (sections 1-12: requires_grad, backward,
grad, freezing gradients, detach, is_leaf, hooks, retain_grad) with ``import tracegrad as
torch``: the code is PyTorch code, and every value printed is the one PyTorch prints.
Sections 13-16 (custom Functions, gradcheck, the profiler) have their own examples:
examples/custom_function.py and examples/profile_training.py.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tracegrad as torch  # noqa: E402
from tracegrad import nn  # noqa: E402


def section(title):
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def show(expr, value):
    """Print an expression and its value, the way the cheat sheet writes them."""
    print(f"{expr:<40} # {value}")


def inputs():
    a = torch.tensor([1., 2.], requires_grad=True)
    b = torch.tensor([1., 2.], requires_grad=True)
    return a, b


# --------------------------------------------------------------------------------------------
section("1. requires_grad")
a = torch.tensor([1.], requires_grad=True)
b = a + 1
show("b = a + 1; b.requires_grad", b.requires_grad)  # children of such tensors need grad too


class Net(nn.Module):  # a backbone and a head called ``fc``, like a torchvision ResNet
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 512)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc(self.body(x).relu())


model = Net()
for param in model.parameters():
    param.requires_grad = False   # freeze the whole model (leaves only)...
model.fc = nn.Linear(512, 100)    # ...then fine-tune a new head
out = model(torch.randn(4, 8))
show("model(x).requires_grad", out.requires_grad)
out.sum().backward()
show("model.body.weight.grad", model.body.weight.grad)
show("model.fc.weight.grad.shape", model.fc.weight.grad.shape)

# --------------------------------------------------------------------------------------------
section("2. how autograd records")
a, b = inputs()
c = 2 * a + 3 * b + 1
show("c.grad_fn", c.grad_fn.name())
show("c.grad_fn.next_functions", [(f.name() if f else None) for f, _ in c.grad_fn.next_functions])

# --------------------------------------------------------------------------------------------
section("3. torch.autograd.backward")
a, b = inputs()
c = 2 * a + 3 * b + 1
grad = torch.tensor([1., 1.])
torch.autograd.backward(c, grad_tensors=grad)
show("a.grad", a.grad)
show("b.grad", b.grad)
try:
    torch.autograd.backward(c, grad_tensors=grad)  # the graph was freed by the first call
except RuntimeError as e:
    show("backward again", f"RuntimeError: {str(e)[:56]}...")

# --------------------------------------------------------------------------------------------
section("4. torch.autograd.grad")
a, b = inputs()
c = 2 * a + 3 * b + 1
d = 2 * c + 1
show("torch.autograd.grad(d, (a, b, c), grad)", torch.autograd.grad(d, (a, b, c), grad))
show("a.grad, b.grad", (a.grad, b.grad))  # grad() returns, and leaves .grad alone

# --------------------------------------------------------------------------------------------
section("5. freezing gradients")
x = torch.tensor([1.], requires_grad=True)
with torch.no_grad():
    y = x * 2
show("with no_grad(): (x*2).requires_grad", y.requires_grad)


@torch.no_grad()
def doubler(x):
    return x * 2


show("@no_grad doubler(x).requires_grad", doubler(x).requires_grad)
flag = False
with torch.set_grad_enabled(flag):
    y = x * 2
show("set_grad_enabled(False) as context", y.requires_grad)
torch.set_grad_enabled(False)
y = x * 2
show("set_grad_enabled(False) as a call", y.requires_grad)
torch.set_grad_enabled(True)

# --------------------------------------------------------------------------------------------
section("6. Tensor.backward")
a, b = inputs()
(2 * a + 3 * b + 1).backward(torch.tensor([1., 1.]))  # same as autograd.backward
show("a.grad, b.grad", (a.grad, b.grad))

# --------------------------------------------------------------------------------------------
section("7. detach")
a, b = inputs()
c = 2 * a + 3 * b + 1
cc = c.detach()
show("cc.requires_grad", cc.requires_grad)
show("cc", cc)
cc.add_(1)  # as in PyTorch, cc shares c's memory (the cheat sheet says it copies)
show("after cc.add_(1): c", c)

# --------------------------------------------------------------------------------------------
section("8. detach_")
a, b = inputs()
c = 2 * a + 3 * b + 1
cc = c.detach_()
show("cc is c", cc is c)
show("cc.requires_grad", cc.requires_grad)
show("cc", cc)

# --------------------------------------------------------------------------------------------
section("9. Tensor.grad")
a, b = inputs()
show("a.grad before backward", a.grad)
(a * b).sum().backward()
show("a.grad after backward", a.grad)

# --------------------------------------------------------------------------------------------
section("10. is_leaf")
a, b = inputs()
c = 2 * a + 3 * b + 1
show("c.is_leaf", c.is_leaf)
show("a.is_leaf", a.is_leaf)

# --------------------------------------------------------------------------------------------
section("11. register_hook")


def hook_func(grad):
    print(f"{'  (hook) hook_func(grad) prints':<40} # {grad}")


a, b = inputs()
c = 2 * a + 3 * b + 1
d = 2 * c + 1
hook = c.register_hook(hook_func)
d.backward(torch.tensor([1., 1.]), retain_graph=True)
hook.remove()
d.backward(torch.tensor([1., 1.]))  # removed: prints nothing
show("a.grad after two passes", a.grad)

# --------------------------------------------------------------------------------------------
section("12. retain_grad")
a, b = inputs()
c = 2 * a + 3 * b + 1
d = 2 * c + 1
c.retain_grad()
d.backward(torch.tensor([1., 1.]))
show("c.grad", c.grad)

print("\nSections 13-16: python examples/custom_function.py, python examples/profile_training.py")
