"""Adam (Kingma & Ba), with PyTorch's bias correction, weight decay and AMSGrad."""
from __future__ import annotations

import math

from .. import _creation as C
from .. import ops as _ops
from .optimizer import Optimizer

__all__ = ["Adam"]


class Adam(Optimizer):
    """``torch.optim.Adam`` (the single-tensor algorithm), in place under no_grad::

        g = p.grad (+ weight_decay * p)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps     (max of all v so far with amsgrad)
        p -= lr / (1 - beta1 ** t) * m / denom
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update(self, p, g, group):
        state = self.state[p]
        amsgrad = self._branch(lambda: group["amsgrad"], "amsgrad")
        if not state:
            state["step"] = 0
            state["exp_avg"] = C.zeros_like(p)
            state["exp_avg_sq"] = C.zeros_like(p)
            if amsgrad:
                state["max_exp_avg_sq"] = C.zeros_like(p)
        self._host(lambda: state.__setitem__("step", state["step"] + 1))
        h = self._hyper
        m, v = state["exp_avg"], state["exp_avg_sq"]
        self._axpy(m.mul_(h(lambda: group["betas"][0], p)), g,
                   h(lambda: 1 - group["betas"][0], p), out=True)
        self._axpy(v.mul_(h(lambda: group["betas"][1], p)), g * g,
                   h(lambda: 1 - group["betas"][1], p), out=True)
        step_size = h(lambda: group["lr"] / (1 - group["betas"][0] ** state["step"]), p)
        bc2_sqrt = h(lambda: math.sqrt(1 - group["betas"][1] ** state["step"]), p)
        if amsgrad:
            vmax = state["max_exp_avg_sq"]
            vmax.copy_(_ops.maximum(vmax, v))
            v = vmax
        denom = (v.sqrt() / bc2_sqrt).add_(h(lambda: group["eps"], p))
        self._axpy(p, m / denom, -step_size, out=True)
