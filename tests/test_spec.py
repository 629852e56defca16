"""The spec's sections 1-12 (the torch.autograd cheat sheet), run as written.

Each section's code is kept exactly as the spec has it (its Chinese comments included), with
``import tracegrad as torch`` at the top. ``run_spec`` executes it statement by statement like a
REPL and checks every value the spec prints: a bare expression whose comment (on its line, or
on the comment line right below it) is a value -- ``# True``, ``# tensor([2., 2.])``,
``# (None, None)`` -- must have exactly that repr, or print exactly that (a hook's ``print``).
A statement whose comment says it fails (``报错`` "raises", ``错误`` "error") must raise the
error the test names.

When PyTorch is installed, every section is also run with ``import torch`` and must produce the
same reprs, output and errors (``test_same_as_pytorch``).

Where the spec and PyTorch disagree, PyTorch wins: section 7 says ``detach()`` allocates new
memory, but in PyTorch (and tracegrad) the detached tensor shares storage with the original;
``test_7_detach`` checks the sharing (see docs/autograd.md).
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
import warnings
from dataclasses import dataclass, field

import pytest

import tracegrad

SECTIONS = {
    "1": '''
a=torch.tensor([1.], requires_grad=True)
b=a+1
b.requires_grad # True
''',
    "1-finetune": '''
for param in model.parameters():
    param.requires_grad = False # 将模型的叶节点grad冻结
model.fc = nn.Linear(512, 100) # 进行finetune
# 由于model.fc中的参数需要梯度因此整个模型的输出仍然是需要梯度的
# 注意！x.requires_grad=False 其中的x必须是叶节点才能操作
''',
    "3": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
grad = torch.tensor([1.,1.])
torch.autograd.backward(c, grad_tensors=grad)
a.grad
# tensor([2., 2.])
b.grad
# tensor([3., 3.])
#####################
c.grad # 非叶节点不储存梯度
torch.autograd.backward(c, grad_tensors=grad) # 继续执行报错
#####################
# 注意，如果输出节点是标量，那么grad_tensors可以不用写，默认传1
# 如果需要保留计算图可以修改retain_graph参数，但不推荐
# 如果保留计算图，则需要在计算前将梯度清0 (由于梯度是累加的)
''',
    "4": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
d = 2*c+1
grad = torch.tensor([1.,1.])
torch.autograd.grad(d,(a,b,c),grad) # 非叶节点也能输出梯度!
# (tensor([4., 4.]), tensor([6., 6.]), tensor([2., 2.]))
a.grad, b.grad
# (None, None) # 该函数结果不储存在.grad中
torch.autograd.grad(d,a,grad) # 错误，一次前向只能操作一次
''',
    "5": '''
## 方案一
x = torch.tensor([1.], requires_grad=True)
with torch.no_grad():
\ty = x * 2
y.requires_grad # False
## 方案二
@torch.no_grad()
def doubler(x):
\treturn x * 2
z = doubler(x)
z.requires_grad # False
## 方案三
flag = False # 如果这里为True则不阻止梯度传递
with torch.set_grad_enabled(flag):
\ty = x * 2
y.requires_grad # False
## 方案四
torch.set_grad_enabled(False) # 如果是True则不阻止梯度传递
y = x * 2
y.requires_grad # False
''',
    "7": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
cc = c.detach()
cc.requires_grad # False
cc  # tensor([ 6., 11.])
''',
    "8": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
cc = c.detach_()
cc is c # True # 这是一个in-place操作
cc.requires_grad # False
cc  # tensor([ 6., 11.])
''',
    "10": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
c.is_leaf # False
a.is_leaf # True
''',
    "11": '''
def hook_func(grad): # 钩子函数的参数固定为grad
\tprint(grad)
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
d = 2*c+1
hook = c.register_hook(hook_func) # 某张量注册一个钩子函数
d.backward(torch.tensor([1.,1.]))
# tensor([2., 2.]) # 钩子函数被执行
# hook.remove() # 如果保留计算图，可以用这个方法解除钩子
''',
    "12": '''
a = torch.tensor([1.,2.], requires_grad=True)
b = torch.tensor([1.,2.], requires_grad=True)
c = 2*a+3*b+1
d = 2*c+1
c.retain_grad()
d.backward(torch.tensor([1.,1.]))
c.grad # tensor([2., 2.])
''',
}

# the error each failing statement must raise (the spec's "报错"/"错误" lines)
SECOND_BACKWARD = (RuntimeError, "Trying to backward through the graph a second time")
ERRORS = {"3": SECOND_BACKWARD, "4": SECOND_BACKWARD}

_VALUE = re.compile(r"^(tensor\(|True\b|False\b|None\b|\()")


@dataclass
class Step:
    source: str
    value: object = None
    shown: str | None = None     # repr of the value, or what the statement printed
    error: BaseException | None = None
    warnings: list = field(default_factory=list)


def _comments(code):
    """{line number: comment text without '#'} for every comment in ``code``."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _expected(stmt, next_line, comments):
    """The value the spec prints for ``stmt``: its own comment, or the comment line below."""
    text = comments.get(stmt.end_lineno)
    if (text is None or not _VALUE.match(text)) and stmt.end_lineno + 1 < next_line:
        text = comments.get(stmt.end_lineno + 1)
    if text is None or not _VALUE.match(text):
        return None
    return text.split(" # ")[0].strip()


def _norm(s):
    return " ".join(s.split())


def run_spec(section, lib_name="tracegrad", namespace=None, check=True):  # noqa: C901
    """Run a section of the spec statement by statement; returns the list of Steps.

    ``lib_name`` picks the ``import ... as torch`` line. With ``check``, each printed value is
    compared with the spec's comment and each failing statement with ``ERRORS``."""
    header = "import torch" if lib_name == "torch" else "import tracegrad as torch"
    code = header + "\n" + SECTIONS[section].lstrip("\n")
    lib = tracegrad if lib_name != "torch" else __import__("torch")
    tree = ast.parse(code)
    comments = _comments(code)
    lines = code.splitlines()
    ns = dict(namespace or {})
    steps = []
    failing = {ln for ln, c in comments.items() if "报错" in c or "错误" in c}
    mode = lib.is_grad_enabled()
    try:
        for k, stmt in enumerate(tree.body):
            nxt = tree.body[k + 1].lineno if k + 1 < len(tree.body) else len(lines) + 1
            src = ast.get_source_segment(code, stmt)
            step = Step(src)
            steps.append(step)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as ws:
                warnings.simplefilter("always")
                try:
                    if isinstance(stmt, ast.Expr):
                        step.value = eval(compile(ast.Expression(stmt.value), "<spec>", "eval"), ns)
                    else:
                        exec(compile(ast.Module([stmt], []), "<spec>", "exec"), ns)
                except Exception as e:  # noqa: BLE001 -- recorded, then checked
                    step.error = e
            step.warnings = [w.message for w in ws]
            printed = out.getvalue()
            step.shown = printed.strip() if printed else (
                repr(step.value) if isinstance(stmt, ast.Expr) and step.value is not None
                else None)
            if isinstance(stmt, ast.Expr) and step.value is None and not printed:
                step.shown = "None"
            if not check:
                continue
            if stmt.end_lineno in failing:
                exc, match = ERRORS[section]
                assert isinstance(step.error, exc), f"spec line {src!r} should raise {exc.__name__}"
                assert re.search(match, str(step.error)), str(step.error)
                continue
            if step.error is not None:
                raise AssertionError(f"spec line {src!r} raised") from step.error
            want = _expected(stmt, nxt, comments)
            if want is not None:
                assert _norm(step.shown or "") == _norm(want), (
                    f"spec line {src!r}: got {step.shown!r}, the spec prints {want!r}")
    finally:
        lib.set_grad_enabled(mode)  # section 5 turns grad mode off with a plain call
    return steps


def _step(steps, source):
    return next(s for s in steps if s.source == source)


def _count_checked(section):
    code = SECTIONS[section]
    return sum(1 for c in _comments(code).values() if _VALUE.match(c) or "报错" in c or "错误" in c)


# ----------------------------------------------------------------------------- section 1
def test_1_requires_grad_flows_to_children():
    steps = run_spec("1")
    assert _step(steps, "b.requires_grad").value is True


def _finetune_model(nn):
    class Net(nn.Module):  # a backbone and a head called ``fc``, like torchvision's ResNet
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(8, 512)
            self.fc = nn.Linear(512, 10)

        def forward(self, x):
            return self.fc(self.body(x).relu())
    return Net()


def test_1_finetune_freezes_backbone():
    nn = pytest.importorskip("tracegrad.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("tracegrad.nn has no Linear yet")
    model = _finetune_model(nn)
    run_spec("1-finetune", namespace={"model": model, "nn": nn})
    assert [p.requires_grad for p in model.body.parameters()] == [False, False]
    assert [p.requires_grad for p in model.fc.parameters()] == [True, True]
    assert tuple(model.fc.weight.shape) == (100, 512)
    out = model(tracegrad.randn(4, 8))
    assert out.requires_grad  # "整个模型的输出仍然是需要梯度的"
    out.sum().backward()
    assert model.body.weight.grad is None and model.fc.weight.grad is not None
    # "x.requires_grad=False: x must be a leaf"
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        out.requires_grad = False


# ----------------------------------------------------------------------------- sections 2, 6, 9
def test_2_graph_is_rebuilt_each_iteration():
    x = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    nodes = set()
    for i in range(3):
        y = (x * x if i % 2 else x.exp()).sum()
        nodes.add(type(y.grad_fn.next_functions[0][0]).__name__)
        y.backward()  # frees this iteration's graph; the next one builds a new graph
    assert nodes == {"ExpBackward0", "MulBackward0"}
    assert x.grad.tolist() == pytest.approx([2 * 2.718281828459045 + 2, 2 * 7.38905609893065 + 4])


def test_6_tensor_backward_is_autograd_backward():
    a = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    b = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    (2 * a + 3 * b + 1).backward(tracegrad.tensor([1.0, 1.0]))
    a2 = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    b2 = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    tracegrad.autograd.backward(2 * a2 + 3 * b2 + 1, grad_tensors=tracegrad.tensor([1.0, 1.0]))
    assert a.grad.tolist() == a2.grad.tolist() == [2.0, 2.0]
    assert b.grad.tolist() == b2.grad.tolist() == [3.0, 3.0]


def test_9_grad_is_none_until_backward():
    a = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    c = (a * a).sum()
    assert a.grad is None
    c.backward()
    assert repr(a.grad) == "tensor([2., 4.])"


# ----------------------------------------------------------------------------- sections 3-12
def test_3_backward():
    steps = run_spec("3")
    c_grad = _step(steps, "c.grad")
    assert c_grad.value is None  # 非叶节点不储存梯度: a non-leaf keeps no .grad ...
    assert any("not a leaf Tensor" in str(w) for w in c_grad.warnings)  # ... and says so


def test_4_grad():
    steps = run_spec("4")
    assert _step(steps, "a.grad, b.grad").value == (None, None)


def test_5_freezing_gradients():
    steps = run_spec("5")
    assert [s.value for s in steps if s.source.endswith("requires_grad")] == [False] * 4


def test_7_detach():
    steps = run_spec("7")
    assert _step(steps, "cc.requires_grad").value is False
    # The spec says detach() allocates new memory. PyTorch shares it, and so do we:
    c, cc = None, None
    a = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    c = 2 * a + 1
    cc = c.detach()
    cc.add_(10)
    assert c.tolist() == [13.0, 15.0] and c._version == cc._version == 1


def test_8_detach_():
    steps = run_spec("8")
    assert _step(steps, "cc is c").value is True


def test_10_is_leaf():
    run_spec("10")


def test_11_register_hook():
    steps = run_spec("11")
    assert _step(steps, "d.backward(torch.tensor([1.,1.]))").shown == "tensor([2., 2.])"


def test_12_retain_grad():
    run_spec("12")


def test_every_printed_value_is_checked():
    # a guard on the runner itself: each section has the checks the spec implies
    counts = {s: _count_checked(s) for s in SECTIONS}
    assert counts == {"1": 1, "1-finetune": 0, "3": 3, "4": 3, "5": 4, "7": 2, "8": 3,
                      "10": 2, "11": 1, "12": 1}
    with pytest.raises(AssertionError, match="the spec prints"):
        SECTIONS["bad"] = "a = torch.tensor([1.])\na * 2 # tensor([3.])\n"
        try:
            run_spec("bad")
        finally:
            del SECTIONS["bad"]


# ----------------------------------------------------------------------------- vs PyTorch
@pytest.mark.parametrize("section", [s for s in SECTIONS if s != "1-finetune"])
def test_same_as_pytorch(section, torch_ref):
    ours = run_spec(section)
    theirs = run_spec(section, "torch")
    assert [s.source for s in ours[1:]] == [s.source for s in theirs[1:]]  # after the import
    for a, b in zip(ours, theirs):
        assert a.shown == (b.shown and b.shown.replace("torch.", "tracegrad.", 1)), a.source
        assert type(a.error) is type(b.error), a.source
        if a.error is not None:
            assert str(a.error) == str(b.error), a.source
        assert [type(w) for w in a.warnings] == [type(w) for w in b.warnings], a.source
