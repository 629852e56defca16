"""Adagrad (Duchi et al.), with PyTorch's learning-rate decay and initial accumulator."""
from __future__ import annotations

from .. import _creation as C
from .optimizer import Optimizer, _check_options, _count, _step_tensor

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``::

        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p -= clr * g / (sqrt(s) + eps)

    As in PyTorch, the state (``step`` and ``sum``, filled with
    ``initial_accumulator_value``) exists from construction."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = _step_tensor()
        state["sum"] = C.full_like(p, group["initial_accumulator_value"])

    def _update(self, p, g, group):
        state = self.state[p]
        if not state:  # a parameter of a group added after construction
            self._init_state(p, group)
        t = _count(state)
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        s = state["sum"]
        s.add_(g * g)
        std = s.sqrt().add_(group["eps"])
        p.sub_(g / std * clr)
