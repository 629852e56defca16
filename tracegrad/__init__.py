"""tracegrad: PyTorch's autograd semantics on JAX arrays, with a tracing compiler to XLA.

    import tracegrad as torch   # eager code written for torch.autograd runs unchanged

The public namespace is ``__all__`` below: dtypes, devices, ``Tensor``, the factories of
``_creation`` (its ``__all__``), the op functions of ``ops`` (its ``__all__``), grad modes and
``compile``; and the subpackages ``autograd``, ``nn``, ``optim``, ``func``, ``compiler``,
``profiler``, ``ir``. Nothing else (no ``jax``, no registry internals) is exported.
"""

from ._dtype import (bfloat16, bool, double, dtype, float, float16, float32, float64,  # noqa: A004
                     get_default_dtype, half, int, int8, int16, int32, int64, long,
                     promote_types, result_type, set_default_dtype, short, uint8)
from ._device import cuda, device
from ._tensor import Size, Tensor
from . import _creation
from ._creation import *  # noqa: F401,F403  (exactly _creation.__all__)
from . import ops
from .ops import *  # noqa: F401,F403  (exactly ops.__all__)
from . import autograd, profiler
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from . import nn, optim
from . import compiler
from .compiler import compile  # noqa: A004
from . import func
from . import ir
from . import serialization, utils
from .serialization import load, save

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()


__all__ = (["dtype", "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
            "float32", "float64", "float", "double", "half", "long", "int", "short",
            "get_default_dtype", "set_default_dtype", "promote_types", "result_type",
            "device", "cuda", "Size", "Tensor", "is_tensor", "numel",
            "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
            "compile", "save", "load"]
           + list(_creation.__all__) + list(ops.__all__))
