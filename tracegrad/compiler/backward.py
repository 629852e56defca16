"""``CompiledFunctionBackward``: the grad_fn of a compiled call's outputs. It runs the jitted
backward program (or hands out the joint program's gradients), then the eager engine carries
the input gradients on: hooks on the inputs, their own history, AccumulateGrad on leaves."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._state import STATE
from .._tensor import Tensor
from ..autograd import engine as _engine
from ..autograd import grad_mode as _gm
from ..autograd import profiler as _profiler
from .._errors import FREED_GRAPH_MSG as _FREED_MSG
from ..autograd.graph import Node
from .._graph import gradient_edge as _edge
from .callbacks import current
from .guards import unique_tensors
from .program import ResidualFrom, Source
from .tracer import HostInput

__all__ = ["CompiledFunctionBackward", "target_tensor"]


def _is_tensor(x):
    return isinstance(x, Tensor)


def target_tensor(entry, tensors, ref):
    """The argument or captured tensor a ``Ref`` names, for this call."""
    return tensors[ref.index] if ref.source is Source.ARG else entry.captured[ref.index].tensor


def residuals_of(entry, vals, outs):
    """The backward's residual arguments: from the call's inputs ``vals`` or the forward's
    outputs after the program outputs ``outs``."""
    return [vals[i] if src is ResidualFrom.INPUT else outs[i] for src, i in entry.residual_spec]


class CompiledFunctionBackward(Node):
    """grad_fn of a compiled call's outputs: runs the jitted backward, then the eager engine
    carries the input gradients on (hooks on inputs, AccumulateGrad on leaves)."""

    def __init__(self, entry, tensors, residual_outs, vals, call, cf, grads=None):
        targets, devices = [], []
        for ref in entry.targets:
            t = target_tensor(entry, tensors, ref)
            targets.append(_edge(t))
            devices.append(t._device)  # each input's gradient lives on that input's device
        super().__init__(tuple(targets))
        self.devices = devices
        self.entry = entry
        self.num_outputs = len(entry.diff_outputs)
        if grads is None:
            self.residuals = residuals_of(entry, vals, residual_outs)
        else:  # the joint program ran: gradients for the implicit seed are ready; the
            self.residuals = vals  # inputs are kept to recompute residuals for any other seed
        self.grads = grads
        self._joint_counted = False
        self.call = call
        self.cf = cf
        self.versions = [(c.tensor, c.tensor._data.version) for c in entry.captured
                         if not isinstance(c.tensor, HostInput)] + \
                        [(t, t._data.version) for t in tensors]
        self._freed = False
        self.outputs = []

    def name(self):
        return "CompiledFunctionBackward"

    def apply(self, grad_outputs):
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        for t, ver in self.versions:
            if t._data.version != ver:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: an input of the compiled function {self.cf.__name__} is at "
                    f"version {t._data.version}; expected version {ver} instead.")
        if STATE.grad_enabled:  # create_graph: replay eagerly so the gradient has a graph
            if self.entry.writebacks:  # the replay would change those tensors a second time
                raise RuntimeError(
                    f"tracegrad.compile: backward with create_graph=True through a call of "
                    f"{self.cf.__name__} that changed tensors in place is not supported (its "
                    f"eager replay would apply the change again). Call {self.cf.__name__} "
                    f"uncompiled where you need higher-order gradients.")
            self._joint_done(False)
            return self._replay(grad_outputs)
        e = self.entry
        g0 = grad_outputs[0]
        implicit = g0 is not None and len(grad_outputs) == 1 and e.joint_ok and \
            _engine.is_implicit_ones(g0)
        if self.grads is not None:
            if implicit:  # the joint program's gradients are the answer
                self._joint_done(True)
                return self._wrap(self.grads)
            self._joint_done(False)  # another seed: recompute the residuals, run the backward
            vals = self.residuals
            outs = () if e.bare else e.fwd(*vals)[e.n_prog_out:]
            self.residuals = residuals_of(e, vals, outs)
        elif implicit:
            e.joint_seen()
        gs = [jnp.zeros(shape, dtype) if g is None else g._data.value
              for g, (shape, dtype) in zip(grad_outputs, e.grad_meta)]
        bwd = e.bwd or e.backward_fn()
        consts = [t._data.value for t in e.bwd_consts] if e.bwd_consts else ()
        current.node = self
        try:
            if STATE.profiler is None:
                res = bwd(*self.residuals, *consts, *gs)
            else:
                with _profiler.region("tg.compile.backward"):
                    res = bwd(*self.residuals, *consts, *gs)
        finally:
            current.node = None
        return self._wrap(res)

    def _wrap(self, arrays):
        it = iter(arrays)
        return [Tensor._make(next(it), d) if present else None
                for present, d in zip(self.entry.grad_present, self.devices)]

    def _replay(self, grad_outputs):
        """create_graph=True: run the user's function eagerly (recording), then the eager
        engine with create_graph, so second derivatives are exact."""
        args, kwargs = self.call
        with _gm.enable_grad():
            out = self.cf.fn(*args, **kwargs)
        flat, _ = jax.tree_util.tree_flatten(out, is_leaf=_is_tensor)
        outs = [flat[i] for i in self.entry.diff_outputs]
        pairs = [(o, g) for o, g in zip(outs, grad_outputs) if g is not None and o.requires_grad]
        tensors = unique_tensors(jax.tree_util.tree_flatten((args, kwargs), is_leaf=_is_tensor)[0])
        targets = [target_tensor(self.entry, tensors, ref) for ref in self.entry.targets]
        if not pairs:
            return [None] * len(targets)
        res = _engine.run_backward([o for o, _ in pairs], [g for _, g in pairs], True, True,
                                   inputs=targets, accumulate=False)
        return list(res)

    def _joint_done(self, used):
        """Account once for this call's joint gradients: used, or wasted (then dropped)."""
        if self.grads is None or self._joint_counted:
            if not used:
                self.grads = None
            return
        self._joint_counted = True
        if used:
            self.entry.joint_seen()
        else:
            self.entry.joint_missed()
            self.grads = None

    def release(self):
        # always: scalars baked into the program count as saved (eager OpNode, PyTorch), and
        # torch.compile's backward reads ctx.saved_tensors, which raises once freed
        self._joint_done(False)
        self._freed = True
        self.residuals = []
        self.call = None

    def __del__(self):
        try:
            self._joint_done(False)  # the output was dropped without a backward
        except Exception:  # interpreter shutdown: nothing left to account for
            pass
