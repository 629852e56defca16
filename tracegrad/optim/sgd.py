"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

from .optimizer import Optimizer, _check_options

__all__ = ["SGD"]


class SGD(Optimizer):
    """``torch.optim.SGD``, with its update rule (applied in place, under no_grad)::

        g = p.grad (-p.grad with maximize) + weight_decay * p
        buf = g                                   (first step)
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        g = g + momentum * buf if nesterov else buf (when momentum != 0)
        p -= lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_options(dict(differentiable=differentiable))
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    _compiles = True  # (every hyperparameter read through _hyper / _branch)

    def _update(self, p, g, group):
        if self._branch(lambda: group["momentum"] != 0, "momentum != 0"):
            momentum = self._hyper(lambda: group["momentum"], p)
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.clone()
            else:
                self._axpy(buf.mul_(momentum), g, self._hyper(lambda: 1 - group["dampening"], p),
                           out=True)
            g = self._axpy(g, buf, momentum) if self._branch(lambda: group["nesterov"],
                                                             "nesterov") else buf
        self._axpy(p, g, self._hyper(lambda: -group["lr"], p), out=True)
