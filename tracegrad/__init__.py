"""tracegrad: PyTorch's autograd semantics on JAX arrays, with a tracing compiler to XLA.

    import tracegrad as torch   # eager code written for torch.autograd runs unchanged
"""
from __future__ import annotations

from . import _dtype
from ._dtype import (bfloat16, bool, double, dtype, float, float16, float32, float64,  # noqa: A004
                     get_default_dtype, half, int, int8, int16, int32, int64, long,
                     promote_types, result_type, set_default_dtype, short, uint8)
from ._device import cuda, device
from ._tensor import Size, Tensor
from ._creation import *  # noqa: F401,F403
from . import ops
from .ops import *  # noqa: F401,F403
from .ops import (abs, add, amax, amin, argmax, argmin, bmm, broadcast_shapes, broadcast_tensors,
                  broadcast_to, cat, chunk, clamp, clone, concat, cos, div, dot, eq, exp, expm1,
                  flatten, gather, ge, gt, index_select, isfinite, isnan, le, log, log1p,
                  log_softmax, logical_and, logical_not, logical_or, logsumexp, lt, matmul,
                  max, maximum, mean, min, minimum, mm, mul, mv, narrow, ne, neg, nonzero, norm,
                  outer, permute, pow, reciprocal, relu, reshape, rsqrt, sigmoid, sign, sin,
                  softmax, split, sqrt, square, squeeze, stack, std, sub, sum, t, tanh, transpose,
                  unbind, unflatten, unsqueeze, var, where)
from . import autograd
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from . import nn, optim
from . import compiler
from .compiler import compile  # noqa: A004
from . import func
from . import serialization, utils
from .serialization import load, save

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()
