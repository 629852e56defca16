"""``tracegrad.profiler`` (also ``tracegrad.autograd.profiler``, PyTorch's path): PyTorch's
autograd profiler, for eager ops, backward nodes, compiled regions and user ranges.

    import tracegrad as torch
    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.autograd.profiler.record_function("step"):
            loss = (w * x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")       # open in https://ui.perfetto.dev

What is recorded, each with wall-clock start/end (``time.perf_counter_ns``) and thread:

- every registry op run eagerly (``aten::mul``: PyTorch's name, ``Op.aten``; also the ops a
  backward rule runs),
- every backward node the engine runs (``MulBackward0``, ``AccumulateGrad``, a custom
  Function's backward),
- every compiled-region step ``tracegrad.compile`` reports through :func:`region`
  (``tg.compile[fn]`` with ``cache="hit"|"miss"``, ``tg.compile.trace``, ``.codegen``,
  ``.xla_compile`` with ``flops``/``bytes_accessed``, ``.forward``, ``.backward``),
- user ranges from :class:`record_function`.

How it hooks in: the op path (``ops/_registry.apply``) and the engine read
``STATE.profiler`` once; it is ``None`` unless a profile is active, so profiling off costs one
attribute load and one ``is not None`` per op (``benchmarks/profiler_overhead.py`` measures
it). A profile sets a ``_Collector`` there on ``__enter__`` and puts back what was there on
``__exit__``; nested profiles each get every event recorded while they are active. The slot
is per-thread (``tracegrad/_state.py``), as PyTorch's profiler records only the thread that
entered it: another thread's ops are not recorded (it can open its own profile).

Parent/child structure is exact, not guessed from timestamps: each range takes a sequence
number on entry and on exit, and on one thread a range is the child of the innermost range
whose numbers enclose its own.

``use_cuda=True`` / ``use_device="cuda"``: at the end of every range the profiler blocks
until the GPU has finished the work queued so far, so CPU times include waiting for the
device; the wait itself (less the idle cost of the barrier, calibrated on entry) is the
event's self device time, shown in the ``Self CUDA``/``CUDA total`` columns. This is device
*wait* time measured from the host, not per-kernel time (use ``jax.profiler`` for kernels).
On a machine where jax sees no GPU, PyTorch's behaviour is kept: a ``UserWarning`` "CUDA is
not available, disabling CUDA profiling", and CPU-only results.
"""
from __future__ import annotations

from ._events import EventList, FunctionEvent, FunctionEventAvg, Interval
from ._profile import profile
from ._record import record_function, region

__all__ = ["profile", "record_function", "region", "EventList", "FunctionEvent",
           "FunctionEventAvg", "Interval"]
