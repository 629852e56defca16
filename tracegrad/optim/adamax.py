"""Adamax (Kingma & Ba): Adam with the infinity norm."""
from __future__ import annotations

from .. import _creation as C
from .. import ops as _ops
from .adam import _check_adam
from .optimizer import Optimizer, _check_options, _count, _lerp_, _step_tensor

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """``torch.optim.Adamax``::

        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p -= lr / (1 - beta1 ** t) * m / u
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_adam(lr, betas, eps, weight_decay)
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, capturable=capturable))

    def _update(self, p, g, group):
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["exp_avg"] = C.zeros_like(p)
            state["exp_inf"] = C.zeros_like(p)
        t = _count(state)
        m, u = state["exp_avg"], state["exp_inf"]
        _lerp_(m, g, 1 - beta1)
        u.copy_(_ops.maximum(u.mul_(beta2), g.abs().add_(group["eps"])))
        clr = group["lr"] / (1 - beta1 ** t)
        p.sub_(m / u * clr)
