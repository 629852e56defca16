"""Recording: the collector a profile installs in ``STATE.profiler``, the ranges it records
(ops, backward nodes, Function calls, compiled regions, user ranges) and the device barrier
of ``use_device="cuda"``."""
from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time

import jax
import jax.numpy as jnp

from .._device import _gpus
from .._state import STATE
from .._tensor import Tensor

__all__ = ["region", "record_function"]

_now = time.perf_counter_ns
_get_ident = threading.get_ident
_seq = itertools.count()          # enter/exit order; next() is atomic under the GIL
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STACK_DEPTH = 32

# ----------------------------------------------------------------------------- recording

class _Collector:
    """What ``STATE.profiler`` holds while one or more profiles are active."""

    __slots__ = ("sinks", "record_shapes", "with_stack", "sync", "sync_base_ns", "thread_names")

    def __init__(self, sinks, record_shapes, with_stack, sync, sync_base_ns):
        self.sinks = sinks                  # one raw-record list per active profile
        self.record_shapes = record_shapes
        self.with_stack = with_stack
        self.sync = sync                    # device barrier, or None
        self.sync_base_ns = sync_base_ns    # what the barrier costs on an idle device
        self.thread_names = {}

    # the two hook points of the core: ops/_registry.apply and autograd/engine.run_backward
    def op_range(self, op, args):
        return _Range(self, op.aten, "op", _shapes(args) if self.record_shapes else None)

    def function_range(self, name, args):
        """For ``autograd.Function.apply``: a range named after the Function class around its
        forward (PyTorch shows ``Func`` with the forward's ops inside)."""
        return _Range(self, name, "function", _shapes(args) if self.record_shapes else None)

    def node_range(self, node):
        return _Range(self, node.name(), "backward", [] if self.record_shapes else None)


class _Range:
    """One open event. Appends a raw record to every sink of its collector on exit."""

    __slots__ = ("c", "name", "kind", "shapes", "args", "stack", "t0", "s0")

    def __init__(self, c, name, kind, shapes=None, args=None):
        self.c, self.name, self.kind, self.shapes, self.args = c, name, kind, shapes, args
        self.stack = _user_stack() if c.with_stack else None

    def set(self, **args):
        """Add entries to this event's ``args`` before it closes (e.g. flops once known)."""
        if self.args is None:
            self.args = {}
        self.args.update(args)
        return self

    def __enter__(self):
        self.s0 = next(_seq)
        self.t0 = _now()
        return self

    def __exit__(self, *exc):
        c = self.c
        dev = 0
        if c.sync is not None:
            w0 = _now()
            c.sync()
            dev = max(0, _now() - w0 - c.sync_base_ns)
        t1 = _now()
        tid = _get_ident()
        if tid not in c.thread_names:
            th = threading.current_thread()
            c.thread_names[tid] = (th.name, th.native_id)
        rec = (self.name, self.kind, self.t0, t1, self.s0, next(_seq), tid, self.shapes,
               self.args, self.stack, dev)
        for sink in c.sinks:
            sink.append(rec)
        return False


class _NullRange:
    """What :func:`region` returns when no profile is active (one shared instance)."""

    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set(self, **args):
        return self


_NULL = _NullRange()


def region(name, **args):
    """A named range for compiled-code steps: ``with profiler.region("tg.compile.trace"):``.

    ``args`` (e.g. ``cache="miss"``, ``flops=...``) are kept on the event (``event.args``) and
    written to the chrome trace's ``"args"``; more can be added before the range closes with
    ``r.set(flops=...)`` on the object ``with`` gives. When no profile is active this returns
    a shared no-op context, so the cost is one attribute check.
    """
    c = STATE.profiler
    if c is None:
        return _NULL
    return _Range(c, name, "compile", None, args)


class record_function:
    """A user range, as ``torch.autograd.profiler.record_function``: a context manager

        with record_function("data loading"): ...

    or a decorator (``@record_function("step")``; each call is its own range). ``args`` is an
    optional string kept on the event, as in PyTorch. Costs one check when not profiling.
    """

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self.args = args
        self._range = None

    def __enter__(self):
        c = STATE.profiler
        if c is not None:
            self._range = _Range(c, self.name, "user", [] if c.record_shapes else None,
                                 None if self.args is None else {"args": self.args})
            self._range.__enter__()
        return self

    def __exit__(self, *exc):
        r, self._range = self._range, None
        if r is not None:
            r.__exit__(*exc)
        return False

    def __call__(self, fn):
        name, args = self.name, self.args

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with record_function(name, args):
                return fn(*a, **kw)
        return wrapper


def _shapes(args):
    return [list(a._data.value.shape) if isinstance(a, Tensor) else [] for a in args]


def _user_stack():
    # innermost first, tracegrad's own frames left out, PyTorch's "file(line): func" form
    out = []
    f = sys._getframe(2)
    while f is not None and len(out) < _STACK_DEPTH:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG_DIR):
            out.append(f"{fn}({f.f_lineno}): {f.f_code.co_name}")
        f = f.f_back
    return out


@functools.lru_cache(maxsize=None)
def _device_barrier():
    """``sync()`` that returns once every GPU has finished the work queued before it, or None
    when jax sees no GPU. A tiny jitted add on each GPU: executions on one device run in
    stream order, so its result is ready only after everything queued earlier."""
    gpus = _gpus()
    if not gpus:
        return None
    tick = jax.jit(lambda x: x + 1)
    xs = [jax.device_put(jnp.zeros((), jnp.float32), d) for d in gpus]

    def sync():
        for x in xs:
            tick(x).block_until_ready()
    sync()
    return sync


def _calibrate(sync, n=20):
    best = None
    for _ in range(n):
        t = _now()
        sync()
        t = _now() - t
        best = t if best is None else min(best, t)
    return best
