"""RMSprop (Hinton), with PyTorch's centered and momentum variants."""
from __future__ import annotations

from .. import _creation as C
from .optimizer import Optimizer, _check_options, _count, _lerp_, _step_tensor

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``::

        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - gbar ** 2) + eps, gbar = lerp(gbar, g, 1 - alpha)   (centered)
        avg = sqrt(v) + eps                                                 (otherwise)
        buf = momentum * buf + g / avg; p -= lr * buf                       (momentum > 0)
        p -= lr * g / avg                                                   (otherwise)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _update(self, p, g, group):
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["square_avg"] = C.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = C.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = C.zeros_like(p)
        _count(state)
        alpha = group["alpha"]
        v = state["square_avg"]
        v.mul_(alpha).add_(g * g * (1 - alpha))
        if group["centered"]:
            gbar = _lerp_(state["grad_avg"], g, 1 - alpha)
            avg = (v - gbar * gbar).sqrt()
        else:
            avg = v.sqrt()
        avg = avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(g / avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.add_(g / avg * -group["lr"])
