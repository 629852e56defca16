"""The spec's sections 13-15 (torch.autograd.Function, gradcheck, gradgradcheck), run as
written with ``import tracegrad as torch`` in place of ``import torch``.

Section 15 of the spec calls ``gradcheck`` again (its comment says the function "cannot pass"
the check, meaning ``gradgradcheck``): ``gradcheck`` passes, and ``gradgradcheck`` fails --
in tracegrad and in PyTorch alike -- because ``Func.backward`` multiplies by ``expx``/``expy``
saved in ``forward``, where nothing is recorded: those saved tensors carry no history, so the
second derivative misses ``d(exp x)/dx`` (analytical 0, numerical ``g * exp(x)`` on the
diagonal). See docs/gradcheck.md.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

# Section 13, from its class onwards (the lines before it are prose), as in the spec.
SECTION_13 = '''
class Func(torch.autograd.Function):

	@staticmethod
	def forward(ctx, x, y):
		# 输入都是torch.Tensor
		# ctx是固定的，后面参数自己设计
		expx = torch.exp(x) 
		expy = torch.exp(y)
		# 可以不用torch内置操作,自己调DLL
		result = 3*x+2*y+expx+expy
		# 为反向传播保留输出
		ctx.save_for_backward(expx, expy)
		return result
		
	@staticmethod
	def backward(ctx, grad_output):
		# ctx, grad_output 都是固定的
		# grad_output 为上级传下来的梯度张量
		expx, expy,  = ctx.saved_tensors
		grad_x = grad_output*(3+expx)
		grad_y = grad_output*(2+expy)
		return grad_x, grad_y

myfunc = Func.apply # 使用别名实例化

# 下面进行测试
x = torch.tensor([1.,2.], requires_grad=True)
y = torch.tensor([3.,4.], requires_grad=True)
z = myfunc(x,y)
z.backward(torch.tensor([1.,1.]))
x.grad, y.grad
'''

# Section 14, from "## 以下为操作方法" (the lines before it name the parameters in prose).
SECTION_14 = '''
iptx = torch.randn(20, requires_grad=True).double()
ipty = torch.randn(20, requires_grad=True).double()
ipt = iptx,ipty
# 必须是 float64 类型的输入, requires_grad必须为True
test = torch.autograd.gradcheck(myfunc, ipt, atol=1e-4)
print(test)  #　没问题的话输出True
'''

SECTION_15 = '''
test = torch.autograd.gradcheck(myfunc, ipt) # 上述函数无法通过检测
print(test)  #　没问题的话输出True
'''


def _run(lib):
    """Run sections 13-15 against ``lib``; returns the namespace and what was printed."""
    ns = {"torch": lib}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for section in (SECTION_13, SECTION_14, SECTION_15):
            exec(compile(section, "<spec>", "exec"), ns)  # noqa: S102
    return ns, out.getvalue()


def test_sections_13_to_15_print_what_the_spec_prints():
    import tracegrad
    ns, printed = _run(tracegrad)
    x, y = ns["x"], ns["y"]
    # the spec prints (tensor([ 5.7183, 10.3891]), tensor([22.0855, 56.5981]))
    np.testing.assert_allclose(x.grad.tolist(), [5.7183, 10.3891], atol=1e-4)
    np.testing.assert_allclose(y.grad.tolist(), [22.0855, 56.5981], atol=1e-4)
    assert repr(x.grad) == "tensor([ 5.7183, 10.3891])"
    assert x.grad.dtype is tracegrad.float32 and ns["z"].grad_fn.name() == "FuncBackward"
    assert printed == "True\nTrue\n"  # section 14 (atol=1e-4) and section 15 (default atol)


def test_gradgradcheck_of_the_spec_function_fails_as_documented():
    import tracegrad
    from tracegrad.autograd.gradcheck import GradcheckError
    ns, _ = _run(tracegrad)
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to "
                                             "input 0,\nnumerical:"):
        tracegrad.autograd.gradgradcheck(ns["myfunc"], ns["ipt"])
    assert tracegrad.autograd.gradgradcheck(ns["myfunc"], ns["ipt"], raise_exception=False) is False

    # why: the first derivative depends on x only through expx, saved in forward without
    # history, so differentiating it again finds no path back to x
    x = tracegrad.tensor([1., 2.], dtype=tracegrad.float64, requires_grad=True)
    y = tracegrad.tensor([3., 4.], dtype=tracegrad.float64, requires_grad=True)
    go = tracegrad.ones(2, dtype=tracegrad.float64, requires_grad=True)
    gx, gy = tracegrad.autograd.grad(ns["myfunc"](x, y), (x, y), go, create_graph=True)
    assert tracegrad.autograd.grad(gx.sum(), (x, y), allow_unused=True) == (None, None)
    # while the same math written with tracegrad ops has the true second derivative exp(x)
    gx2, _ = tracegrad.autograd.grad(3 * x + 2 * y + x.exp() + y.exp(), (x, y), go,
                                     create_graph=True)
    np.testing.assert_allclose(tracegrad.autograd.grad(gx2.sum(), x)[0].tolist(), np.exp([1., 2.]))


def test_same_behaviour_as_pytorch(torch_ref):
    import tracegrad
    verdicts = {}
    for lib in (tracegrad, torch_ref):
        ns, printed = _run(lib)
        try:
            lib.autograd.gradgradcheck(ns["myfunc"], ns["ipt"])
            gg = None
        except RuntimeError as e:
            gg = (type(e).__name__, str(e).split(",")[0])
        verdicts[lib.__name__] = (printed, [ns["x"].grad.tolist(), ns["y"].grad.tolist()], gg)
    mine, ref = verdicts["tracegrad"], verdicts["torch"]
    assert mine[0] == ref[0] == "True\nTrue\n"
    np.testing.assert_allclose(mine[1], ref[1], rtol=1e-6)
    assert mine[2] == ref[2] == ("GradcheckError", "Jacobian mismatch for output 0 with respect to "
                                                   "input 0")
