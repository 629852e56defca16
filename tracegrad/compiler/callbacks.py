"""Host callbacks in generated backward programs: a tensor hook (or retain_grad) met while
the backward was derived runs on the host, through ``jax.experimental.io_callback``, when the
program runs -- so it fires at every backward, with that backward's gradient."""
from __future__ import annotations

import threading

import jax
import numpy as np
from jax.experimental import io_callback

from .._device import as_device
from .._graph import accumulate_grad
from .._tensor import Tensor
from ..ir.graph import Value

__all__ = ["current", "hook_callback", "retain_grad_hook"]


class _Current(threading.local):
    node = None  # the CompiledFunctionBackward whose program is running (for hook callbacks)


current = _Current()


def hook_callback(fn, gv: Value, device=None):
    """A function for the generated backward: runs ``fn`` (a tensor hook) on the host and
    returns its replacement gradient. The hook sees a tensor on ``device``, the device of the
    gradient it hooks (as in eager)."""
    shape, dtype = gv.shape, gv.dtype
    device = as_device(device)

    def host(x):
        # a private copy (the hook may keep the tensor; x's buffer belongs to the callback)
        t = Tensor._make(jax.device_put(np.array(x), device.jax_device()), device)
        r = fn(t)
        if r is None:
            return np.asarray(x)
        r = np.asarray(r._data.value if isinstance(r, Tensor) else r, dtype=dtype)
        if r.shape != tuple(shape):
            raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has changed the size of "
                               f"value: expected {list(shape)}, got {list(r.shape)}")
        return r

    def callback(x):
        return io_callback(host, jax.ShapeDtypeStruct(shape, dtype), x, ordered=True)

    callback.__name__ = getattr(fn, "__name__", "hook")
    return callback


def retain_grad_hook(t, output_nr):
    """The hook that stores ``.grad`` for ``retain_grad()``: on the running call's output
    number ``output_nr`` (an output of the function), or on ``t`` itself (an intermediate)."""

    def retain_grad(gt):
        target = current.node.outputs[output_nr]() if output_nr is not None else t
        if target is not None:
            accumulate_grad(target, gt, create_graph=False, in_place=False)
        return None
    return retain_grad
