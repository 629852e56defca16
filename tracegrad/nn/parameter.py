"""``Parameter``: a leaf tensor that a ``Module`` registers as one of its parameters."""
from __future__ import annotations

from .. import _creation as C
from .._tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning one to a ``Module`` attribute registers it,
    so it shows up in ``parameters()`` and ``state_dict()``.

    As in PyTorch, ``Parameter(t)`` shares ``t``'s storage (no copy) and requires grad by
    default; results of ops on a parameter are plain tensors.

        >>> import tracegrad as torch
        >>> p = torch.nn.Parameter(torch.ones(2))
        >>> p
        Parameter containing:
        tensor([1., 1.], requires_grad=True)
        >>> isinstance(p, torch.Tensor), type(p * 2).__name__
        (True, 'Tensor')
    """

    _is_param = True

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = C.empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): data must be a Tensor, got {type(data).__name__}")
        p = object.__new__(cls)
        p._data = data._data  # shared storage, like PyTorch's Parameter(t)
        p._rg = False
        p.grad_fn = None
        p._output_nr = 0
        p._device = data._device
        p._grad = None
        p.requires_grad = requires_grad  # raises for integer dtypes, as PyTorch does
        return p

    def __init__(self, data=None, requires_grad=True):
        pass  # everything happens in __new__ (Tensor.__init__ refuses direct construction)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        value = self._data.value  # jax arrays are immutable: sharing the value is a copy
        data = Tensor._make(value, self._device)
        result = type(self)(data, self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        import numpy as np
        return (_rebuild_parameter, (np.asarray(self._data.value), str(self._device),
                                     self.requires_grad))


def _rebuild_parameter(array, device, requires_grad):
    return Parameter(C.tensor(array, device=device), requires_grad)
