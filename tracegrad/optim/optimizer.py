"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, state dicts, and the
shared ``step`` (closure, no_grad, maximize, weight decay) that each optimizer's per-parameter
``_update`` plugs into.

Updates are tensor ops only -- the step count is a 0-d float32 tensor (PyTorch's state
layout) and bias corrections are computed from it with tensor ops in float64, as PyTorch's
Python-float arithmetic does -- so that a compiled whole step can trace them without reading a
value back to the host."""
from __future__ import annotations

import copy
from collections import defaultdict

from .. import _dtype as D
from .._creation import zeros
from .._tensor import Tensor
from .._graph import zero_grad as _zero_grad
from .._state import STATE
from ..autograd.grad_mode import enable_grad, no_grad

__all__ = ["Optimizer"]

def _step_tensor():
    """A fresh step count: PyTorch keeps it as a 0-d float32 tensor."""
    return zeros((), dtype=D.float32)


def _count(state):
    """Advance ``state["step"]`` by one (in place) and return it as float64, for the scalar
    arithmetic of the update (bias corrections), done in tensor ops."""
    step = state["step"]
    step.add_(1)
    return step.double()


def _lerp_(t, end, weight):
    """``t.lerp_(end, weight)`` with PyTorch's formula (weight a Python float)."""
    if abs(weight) < 0.5:
        return t.add_((end - t) * weight)
    return t.copy_(end - (end - t) * (1 - weight))


def _check_options(kw):
    """``foreach``, ``capturable`` and ``fused`` choose PyTorch kernels, not results: accepted
    (and kept in the groups, as PyTorch does); ``differentiable`` would change semantics."""
    if kw.get("differentiable"):
        raise NotImplementedError("differentiable=True (differentiating through the optimizer "
                                  "step) is not supported by tracegrad's optimizers")


class _Required:
    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: ``params`` is an iterable of tensors, or of dicts (parameter groups, each
    with its own options overriding ``defaults``). Subclasses implement ``step``."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {params.type()}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True):
        """Reset the gradients of every parameter: to ``None`` (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                _zero_grad(p, set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient (in place, under no_grad); the
        loss ``closure()`` returns, when given, is computed first with grad enabled."""
        tracer = STATE.tracer
        # in a compiled function: parameters, state and hyperparameters become program inputs
        # and outputs (the compiler's; see docs/compile.md, "Compiling the whole training step")
        snapshot = None if tracer is None else tracer.optimizer_step(self, closure)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    g = p._grad if tracer is None else p.grad
                    if g is None:
                        continue
                    if self._branch(lambda: group.get("maximize", False), "maximize"):
                        g = -g
                    if self._branch(lambda: group.get("weight_decay", 0) != 0, "weight_decay != 0"):
                        if self._branch(lambda: group.get("decoupled_weight_decay", False),
                                        "decoupled_weight_decay"):
                            p.mul_(self._hyper(lambda: 1 - group["lr"] * group["weight_decay"], p))
                        else:
                            g = self._axpy(g, p, self._hyper(lambda: group["weight_decay"], p))
                    self._update(p, g, group)
        if tracer is not None:
            tracer.optimizer_stepped(self, snapshot)
        return loss

    # Inside a compiled function (the whole training step) the update rules read
    # hyperparameters through these, so that they are program inputs read at each call and
    # branches on them are guarded; in eager code they are the plain Python values. An
    # optimizer whose rule reads every hyperparameter this way sets ``_compiles = True``
    # (others are a graph break inside a compiled function: their hyperparameters would be
    # baked into the program).
    _compiles = False

    @staticmethod
    def _hyper(fn, like):
        """``fn()`` (a number from the hyperparameters): the number itself, or in a compiled
        step a 0-d tensor of ``like``'s dtype read at each call."""
        tracer = STATE.tracer
        return fn() if tracer is None else tracer.host_scalar(fn, like)

    @staticmethod
    def _branch(fn, desc):
        """``fn()`` (a branch on hyperparameters); guarded in a compiled step."""
        tracer = STATE.tracer
        return fn() if tracer is None else tracer.host_guard(fn, desc)

    @staticmethod
    def _axpy(x, y, alpha, out=False):
        """``x + alpha * y`` (in place into ``x`` when ``out``); ``alpha`` a number or a 0-d
        tensor (one op with a number, as eager always did)."""
        if isinstance(alpha, Tensor):
            return x.add_(y * alpha) if out else x + y * alpha
        return x.add_(y, alpha=alpha) if out else x.add(y, alpha=alpha)

    def _update(self, p, g, group):
        """The update rule of one parameter ``p`` given its gradient ``g`` (negated with
        ``maximize``, plus ``weight_decay * p`` unless the decay is decoupled)."""
        raise NotImplementedError

    def state_dict(self):
        """``{"state": {index: state}, "param_groups": [...]}``, parameters by index: PyTorch's
        layout, so a state dict saved by either library loads in the other."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append(dict({k: v for k, v in g.items() if k != "params"}, params=ids))
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        by_index = {}
        for saved, group in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], group["params"]):
                by_index[i] = p
            for k, v in saved.items():
                if k != "params":
                    group[k] = copy.deepcopy(v)
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            p = by_index[i]
            self.state[p] = {k: _cast_state(k, v, p) for k, v in s.items()}

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(key, value, param):
    """A loaded state value, as PyTorch's load_state_dict makes it: tensors copied onto the
    parameter's device (and dtype, for floating state other than ``step``)."""
    if not isinstance(value, Tensor):
        return copy.copy(value)
    if key == "step":
        return value.to(dtype=D.float32, device=param.device).clone() if value.ndim == 0 \
            else value.clone()
    if value.is_floating_point() and param.is_floating_point():
        return value.to(dtype=param.dtype, device=param.device).clone()
    return value.to(device=param.device).clone()
