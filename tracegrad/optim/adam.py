"""Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter): PyTorch's bias correction, AMSGrad,
L2 or decoupled weight decay."""
from __future__ import annotations

from .. import _creation as C
from .. import ops as _ops
from .optimizer import Optimizer, _check_options, _count, _step_tensor

__all__ = ["Adam", "AdamW"]


def _check_adam(lr, betas, eps, weight_decay):
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


class Adam(Optimizer):
    """``torch.optim.Adam`` (the single-tensor algorithm), in place under no_grad::

        g = p.grad (+ weight_decay * p, or p *= 1 - lr * weight_decay if decoupled)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps     (max of all v so far with amsgrad)
        p -= lr / (1 - beta1 ** t) * m / denom
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_adam(lr, betas, eps, weight_decay)
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay))

    _compiles = True  # (every hyperparameter read through _hyper / _branch)

    def _update(self, p, g, group):
        h, b = self._hyper, self._branch  # (program inputs / guards in a compiled step)
        state = self.state[p]
        amsgrad = b(lambda: group["amsgrad"], "amsgrad")
        if not state:
            state["step"] = _step_tensor()
            state["exp_avg"] = C.zeros_like(p)
            state["exp_avg_sq"] = C.zeros_like(p)
            if amsgrad:
                state["max_exp_avg_sq"] = C.zeros_like(p)
        t = _count(state)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        w = h(lambda: 1 - group["betas"][0], p)
        if b(lambda: abs(1 - group["betas"][0]) < 0.5, "abs(1 - beta1) < 0.5"):
            m.add_((g - m) * w)  # _lerp_, PyTorch's formula
        else:
            m.copy_(g - (g - m) * h(lambda: 1 - (1 - group["betas"][0]), p))
        self._axpy(v.mul_(h(lambda: group["betas"][1], p)), g * g,
                   h(lambda: 1 - group["betas"][1], p), out=True)
        beta1, beta2 = h(lambda: group["betas"][0], t), h(lambda: group["betas"][1], t)
        step_size = h(lambda: group["lr"], t) / (1 - beta1 ** t)
        bc2_sqrt = (1 - beta2 ** t).sqrt()
        if amsgrad:
            vmax = state["max_exp_avg_sq"]
            vmax.copy_(_ops.maximum(vmax, v))
            v = vmax
        denom = (v.sqrt() / bc2_sqrt).add_(h(lambda: group["eps"], p))
        p.sub_(m / denom * step_size)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (``p *= 1 - lr *
    weight_decay`` before the update; default ``weight_decay=0.01``)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
