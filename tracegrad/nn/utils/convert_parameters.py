"""``parameters_to_vector`` / ``vector_to_parameters``: all parameters as one flat vector and
back (PyTorch's functions)."""
from __future__ import annotations

from ... import ops as _ops
from ..._tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_same_device(param, old):
    if old is not None and param.device != old:
        raise TypeError("Found two parameters on different devices, this is currently not "
                        "supported.")
    return param.device


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated into one vector (a differentiable result)."""
    device, vec = None, []
    for param in parameters:
        device = _check_same_device(param, device)
        vec.append(param.reshape(-1))
    return _ops.cat(vec)


def vector_to_parameters(vec, parameters):
    """Give each parameter (``.data``, as PyTorch) its slice of ``vec``, in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device, pointer = None, 0
    for param in parameters:
        device = _check_same_device(param, device)
        n = param.numel()
        param.data = vec[pointer:pointer + n].reshape(param.shape).data
        pointer += n
