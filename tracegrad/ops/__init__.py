"""The op registry and the public functions over it; also installs Tensor's methods and
operators (each is the same public function, so there is one definition per op)."""
from __future__ import annotations

from . import _registry
from ._registry import REGISTRY as REG, Op, apply, apply_inplace, register  # noqa: F401
from .elementwise import *  # noqa: F401,F403
from .elementwise import _add_scaled, _check_alpha
from .elementwise import (abs, add, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, clamp,
                          cos, div, eq, exp, expm1, ge, gt, isfinite, isnan, le, log, log1p,
                          logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum,
                          mul, ne, neg, pow, reciprocal, relu, rsqrt, sigmoid, sign, sin, sqrt,
                          square, sub, tanh, where)
from .indexing import gather, getitem, index_select, nonzero, setitem
from .linalg import bmm, dot, matmul, mm, mv, outer
from .nn_ops import linear, linear_wgrad
from .conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d, convolution  # noqa: F401
from . import pool as _pool  # noqa: F401  (registers the pooling and padding ops)
from . import normalization as _normalization  # noqa: F401
from .math import (arctan2, atan2, ceil, erf, erfc, fix, floor, fmax, fmin, frac, hypot, lerp,  # noqa: F401
                   round, trunc)
from .activation import elu, gelu, hardtanh, leaky_relu, silu, softplus  # noqa: F401
from . import loss_ops as _loss_ops  # noqa: F401
from . import array as _array_ops, math as _math_ops
from .array import allclose, any, all, cumsum, equal, flip, isclose, masked_fill, roll, tril, triu  # noqa: F401,A004
from .reduction import (amax, amin, argmax, argmin, log_softmax, logsumexp, max, mean, min, norm,
                        softmax, std, sum, var)
from .shape import (broadcast_shapes, broadcast_tensors, broadcast_to, cat, chunk, clone, concat, stack,
                    convert, expand, expand_as, flatten, mT, narrow, numpy_T, permute, reshape,
                    reshape_as, split, squeeze, sum_to_size, swapaxes, t, to_device, transpose,
                    unbind, unflatten, unsqueeze, view, view_as, diagonal, select, contiguous)
from ._views import as_strided
from .. import _dtype as D
from .._creation import tensor
from .._device import as_device, device as _device_cls
from .._tensor import Tensor

# the public op functions (what `tracegrad` re-exports); the registry, Op, apply, ... stay here
__all__ = ["abs", "absolute", "add", "amax", "amin", "argmax", "argmin", "bitwise_and",
           "bitwise_not", "bitwise_or", "bitwise_xor", "bmm", "broadcast_shapes",
           "broadcast_tensors", "broadcast_to", "cat", "chunk", "clamp", "clip",
           "clone", "concat", "cos", "div", "divide", "dot", "eq", "exp", "expm1",
           "flatten", "gather", "ge", "greater", "greater_equal", "gt", "index_select",
           "isfinite", "isnan", "le", "less", "less_equal", "log", "log1p",
           "log_softmax", "logical_and", "logical_not", "logical_or", "logical_xor",
           "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min", "minimum",
           "mm", "mul", "multiply", "mv", "narrow", "ne", "neg", "negative", "nonzero",
           "norm", "not_equal", "outer", "permute", "pow", "reciprocal", "relu",
           "reshape", "rsqrt", "sigmoid", "sign", "sin", "softmax", "split", "sqrt",
           "square", "squeeze", "stack", "std", "sub", "subtract", "sum", "swapaxes",
           "t", "tanh", "transpose", "true_divide", "unbind", "unflatten", "unsqueeze",
           "var", "where", "as_strided", "diagonal", "select"]


def _swap(f):  # (add and mul keep self first, as PyTorch's 2 * x is x.mul(2))
    return lambda self, other: f(other, self)


def _inplace_of(f, scaled=None):
    op = f.op

    def method(self, *args, **kwargs):
        alpha = kwargs.pop("alpha", 1)
        if alpha != 1:
            if scaled is not None:  # add_(other, alpha=a): one op, x + a * other
                _check_alpha(self, args[0], alpha)
                return apply_inplace(scaled, self, args[0], alpha)
            args = (mul(args[0], alpha),)
        return apply_inplace(op, self, *args, **kwargs)
    method.__name__ = f.__name__ + "_"
    return method


def _clamp_(self, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return apply_inplace(clamp.op, self, min=min, max=max)


def _to(self, *args, **kwargs) -> Tensor:
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``."""
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype, dev = a.dtype, a.device
        elif isinstance(a, D.dtype):
            dtype = a
        elif isinstance(a, (str, _device_cls, int)):
            dev = a
        else:
            raise TypeError(f"to() received an invalid combination of arguments: {a!r}")
    t = self
    if dev is not None:
        dev = as_device(dev)
        if dev != t._device:
            t = to_device(t, dev)
    if dtype is not None:
        dtype = D.as_dtype(dtype)
        if dtype is not t.dtype:
            t = convert(t, dtype)
    if copy and t is self:
        t = clone(t)
    return t


def _fill_(self, value):
    return apply_inplace(REG["fill"], self, value)


def _copy_(self, src, non_blocking=False):
    if not isinstance(src, Tensor):
        src = tensor(src)
    return apply_inplace(REG["copy"], self, src)


def _install():
    methods = dict(
        add=add, sub=sub, mul=mul, div=div, neg=neg, pow=pow, matmul=matmul, mm=mm, bmm=bmm,
        mv=mv, dot=dot, outer=outer, exp=exp, log=log, log1p=log1p, expm1=expm1, sin=sin, cos=cos,
        tanh=tanh, sigmoid=sigmoid, relu=relu, sqrt=sqrt, rsqrt=rsqrt, abs=abs, sign=sign,
        reciprocal=reciprocal, square=square, clamp=clamp, clip=clamp, maximum=maximum,
        minimum=minimum, where=lambda self, cond, other: where(cond, self, other),
        eq=eq, ne=ne, lt=lt, le=le, gt=gt, ge=ge, logical_and=logical_and, logical_or=logical_or,
        logical_not=logical_not, isnan=isnan, isfinite=isfinite,
        sum=sum, mean=mean, amax=amax, amin=amin, max=max, min=min, argmax=argmax, argmin=argmin,
        var=var, std=std, softmax=softmax, log_softmax=log_softmax, logsumexp=logsumexp, norm=norm,
        reshape=reshape, view=view, view_as=view_as, reshape_as=reshape_as, flatten=flatten,
        unflatten=unflatten, permute=permute, transpose=transpose, swapaxes=swapaxes, t=t,
        unsqueeze=unsqueeze, squeeze=squeeze, expand=expand, expand_as=expand_as,
        broadcast_to=broadcast_to, sum_to_size=sum_to_size, narrow=narrow, unbind=unbind,
        split=split, chunk=chunk, clone=clone, diagonal=diagonal, select=select,
        contiguous=contiguous,
        as_strided=as_strided, index_select=index_select, gather=gather,
        nonzero=nonzero, __getitem__=getitem, __setitem__=setitem, to=_to, fill_=_fill_,
        copy_=_copy_,
        __add__=add, __radd__=add, __sub__=sub, __rsub__=_swap(sub), __mul__=mul,
        __rmul__=mul, __truediv__=div, __rtruediv__=_swap(div), __pow__=pow,
        __rpow__=_swap(pow), __matmul__=matmul, __rmatmul__=_swap(matmul), __neg__=neg,
        __abs__=abs, __eq__=eq, __ne__=ne, __lt__=lt, __le__=le, __gt__=gt, __ge__=ge,
        __and__=bitwise_and, __or__=bitwise_or, __xor__=bitwise_xor, __invert__=bitwise_not,
        __rand__=_swap(bitwise_and), __ror__=_swap(bitwise_or),
        add_=_inplace_of(add, _add_scaled), sub_=_inplace_of(sub), mul_=_inplace_of(mul), div_=_inplace_of(div),
        pow_=_inplace_of(pow), exp_=_inplace_of(exp), neg_=_inplace_of(neg),
        sigmoid_=_inplace_of(sigmoid), tanh_=_inplace_of(tanh), relu_=_inplace_of(relu),
        sqrt_=_inplace_of(sqrt), abs_=_inplace_of(abs), clamp_=_clamp_,
    )
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.__iadd__ = Tensor.add_
    Tensor.__isub__ = Tensor.sub_
    Tensor.__imul__ = Tensor.mul_
    Tensor.__itruediv__ = Tensor.div_
    Tensor.__hash__ = lambda self: id(self)
    Tensor.T = property(numpy_T)
    Tensor.mT = property(mT)


_install()



def _install_surface():
    """Tensor methods of the ops in math.py and array.py, and their in-place variants."""
    for name, fn in {**_math_ops.METHODS, **_array_ops.METHODS}.items():
        setattr(Tensor, name, fn)
    for name in _math_ops.INPLACE:
        setattr(Tensor, name + "_", _inplace_of(_math_ops.METHODS[name]))
    for name, fn in _array_ops.INPLACE_METHODS.items():
        setattr(Tensor, name, fn)
    for fn in (logical_xor, bitwise_and, bitwise_or, bitwise_xor, bitwise_not):
        setattr(Tensor, fn.__name__, fn)


_install_surface()
