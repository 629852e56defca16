"""The per-thread switches the op path reads: grad mode, the active tracer, the active profiler.

One ``threading.local`` object, ``STATE``, holds all of them, so each is thread-local, as in
PyTorch: a ``no_grad`` block, a trace (``tracegrad.compile``) or a profile in one thread
never changes what another thread records. An eager ``tg.ones(3) + 1`` run by one thread
while another thread traces is an ordinary eager op.

The hot path reads one attribute per switch (``STATE.tracer is None``); the class defaults
below are what a new thread sees (grad on, no tracer, no profiler). This module is the
bottom layer: it imports nothing of tracegrad, and every layer above may read it.

    grad_enabled  autograd records ops (``no_grad`` / ``enable_grad`` / ``set_grad_enabled``)
    inference     inside ``inference_mode()``
    tracer        the ``compiler.tracer.Tracer`` recording this thread's ops, or None
    profiler      the profiler's collector while a profile is active in this thread, or None
"""
from __future__ import annotations

import threading

__all__ = ["STATE"]


class _State(threading.local):
    grad_enabled = True
    inference = False
    tracer = None
    profiler = None


STATE = _State()
