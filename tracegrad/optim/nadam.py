"""NAdam (Dozat): Adam with Nesterov momentum and PyTorch's momentum decay schedule."""
from __future__ import annotations

from .. import _creation as C
from .. import _dtype as D
from .adam import _check_adam
from .optimizer import Optimizer, _check_options, _count, _lerp_, _step_tensor

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """``torch.optim.NAdam``::

        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)); prod *= mu_t
        m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2 ** t)) + eps
        p -= lr * (1 - mu_t) / (1 - prod) * g / denom
        p -= lr * mu_{t+1} / (1 - prod * mu_{t+1}) * m / denom
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_adam(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _update(self, p, g, group):
        beta1, beta2 = group["betas"]
        lr, md = group["lr"], group["momentum_decay"]
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["mu_product"] = C.ones((), dtype=D.float32)
            state["exp_avg"] = C.zeros_like(p)
            state["exp_avg_sq"] = C.zeros_like(p)
        t = _count(state)
        bc2 = 1 - beta2 ** t
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * md)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * md)))
        prod = state["mu_product"]
        prod.mul_(mu)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)
        v.mul_(beta2).add_(g * g, alpha=1 - beta2)
        denom = (v / bc2).sqrt().add_(group["eps"])
        prod64 = prod.double()
        p.add_(g / denom * (-lr * (1.0 - mu) / (1.0 - prod64)))
        p.add_(m / denom * (-lr * mu_next / (1.0 - prod64 * mu_next)))
