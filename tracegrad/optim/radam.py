"""RAdam (Liu et al.): Adam with the variance rectification term."""
from __future__ import annotations

from .. import _creation as C
from .. import ops as _ops
from .adam import _check_adam
from .optimizer import Optimizer, _check_options, _count, _lerp_, _step_tensor

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """``torch.optim.RAdam``::

        m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1; rho_t = rho_inf - 2 t beta2 ** t / (1 - beta2 ** t)
        p -= lr * m / (1 - beta1 ** t) * (r_t * sqrt(1 - beta2 ** t) / (sqrt(v) + eps)
                                          if rho_t > 5 else 1)

    The ``rho_t > 5`` choice is a ``where`` on tensors (no host read of the step)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        _check_adam(lr, betas, eps, weight_decay)
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _update(self, p, g, group):
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["exp_avg"] = C.zeros_like(p)
            state["exp_avg_sq"] = C.zeros_like(p)
        t = _count(state)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)
        v.mul_(beta2).add_(g * g, alpha=1 - beta2)
        bc1 = 1 - beta1 ** t
        bc2 = 1 - beta2 ** t
        corrected = m / bc1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2 ** t) / bc2
        rectified = rho_t > 5.0
        # the rectification term is only meaningful (real) where rho_t > 5
        safe_rho = _ops.where(rectified, rho_t, 10.0)
        rect = ((safe_rho - 4) * (safe_rho - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * safe_rho)).sqrt()
        adaptive = bc2.sqrt() / v.sqrt().add_(group["eps"])
        update = _ops.where(rectified, adaptive * rect, 1.0)
        p.sub_(corrected * group["lr"] * update)
