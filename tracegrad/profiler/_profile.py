"""``profile``: the context manager that records what runs inside it (in its own thread)."""
from __future__ import annotations

import time
import warnings

from .._state import STATE
from ._events import EventList, build_events
from ._record import _calibrate, _Collector, _device_barrier, _now

__all__ = ["profile"]


_NOT_FINISHED = "Profiler didn't finish running"


class profile:
    """Context manager that records what runs inside it, as
    ``torch.autograd.profiler.profile``.

    Args:
        enabled: ``False`` makes it a no-op (results are empty).
        use_cuda: same as ``use_device="cuda"``.
        use_device: ``None`` or ``"cuda"``: block until the GPU is done at the end of every
            range, so times include the device, and add device columns. Without a GPU:
            a warning, and CPU-only results (as PyTorch).
        record_shapes: record the shapes of each op's inputs (``[]`` for Python scalars).
        profile_memory: accepted for compatibility; per-op memory is not tracked (warns).
        with_stack: record the Python stack (user frames) of each event.

    After the block: ``print(prof)``, ``prof.table()``, ``prof.key_averages(...).table(...)``,
    ``prof.events()`` / ``prof.function_events``, ``prof.total_average()``,
    ``prof.export_chrome_trace(path)``.
    """

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False,
                 with_flops=False, profile_memory=False, with_stack=False, with_modules=False,
                 use_kineto=False, use_cpu=True, experimental_config=None):
        self.enabled = enabled
        if use_cuda and use_device is None:
            use_device = "cuda"
        if use_device not in (None, "cuda"):
            raise ValueError(f"profile(use_device={use_device!r}): tracegrad supports "
                             f"use_device=None or 'cuda'")
        self.use_cuda = use_device == "cuda"
        self.use_device = use_device
        self.record_shapes = record_shapes
        self.with_flops = with_flops
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.function_events = None
        self.entered = False
        self._raw = []
        self._prev = None
        self._collector = None

    def __enter__(self):
        if not self.enabled:
            return self
        if self.entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self.entered = True
        sync = None
        if self.use_device == "cuda":
            sync = _device_barrier()
            if sync is None:
                warnings.warn("CUDA is not available, disabling CUDA profiling", stacklevel=2)
                self.use_device, self.use_cuda = None, False
        if self.profile_memory:
            warnings.warn("profile(profile_memory=True): tracegrad does not track per-op "
                          "memory; memory columns are omitted", stacklevel=2)
        prev = STATE.profiler
        base = 0
        if sync is not None:
            base = _calibrate(sync)
        elif prev is not None and prev.sync is not None:
            sync, base = prev.sync, prev.sync_base_ns
        sinks = (prev.sinks if prev is not None else ()) + (self._raw,)
        c = _Collector(sinks,
                       self.record_shapes or (prev is not None and prev.record_shapes),
                       self.with_stack or (prev is not None and prev.with_stack),
                       sync, base)
        if prev is not None:
            c.thread_names = prev.thread_names
        self._prev, self._collector = prev, c
        if sync is not None:
            sync()  # device work queued before the profile is not ours
        self._base_time_ns = time.time_ns()
        self._t0 = _now()
        STATE.profiler = c
        return self

    def __exit__(self, *exc):
        if not self.enabled:
            self.function_events = EventList()
            return False
        STATE.profiler = self._prev
        raw = list(self._raw)   # records of ranges still open now are left out
        # only this profile's options decide what its events carry
        if not self.record_shapes:
            raw = [r[:7] + (None,) + r[8:] for r in raw]
        if not self.with_stack:
            raw = [r[:9] + (None,) + r[10:] for r in raw]
        use_device = self.use_device
        events = build_events(raw, self._t0, self._collector.thread_names, use_device)
        if use_device is None:
            for e in events:
                e.self_device_time_total = e.device_time_total = 0.0
        self.function_events = EventList(events, use_device=use_device,
                                         base_time_ns=self._base_time_ns)
        return False

    def _check_finish(self):
        if self.function_events is None:
            raise RuntimeError(_NOT_FINISHED)

    def events(self):
        """Every recorded event (an ``EventList`` of ``FunctionEvent``), by start time."""
        self._check_finish()
        return self.function_events

    def __str__(self):
        self._check_finish()
        return str(self.function_events)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False, time_unit=None):
        self._check_finish()
        return self.function_events.table(sort_by, row_limit, max_src_column_width,
                                          max_name_column_width, max_shapes_column_width,
                                          header, top_level_events_only, time_unit)

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        """Events aggregated by name (and input shapes / top stack frames when asked)."""
        self._check_finish()
        return self.function_events.key_averages(group_by_input_shape, group_by_stack_n)

    def total_average(self):
        self._check_finish()
        return self.function_events.total_average()

    @property
    def self_cpu_time_total(self):
        self._check_finish()
        return self.function_events.self_cpu_time_total

    def export_chrome_trace(self, path):
        self._check_finish()
        return self.function_events.export_chrome_trace(path)

    def export_stacks(self, path, metric="self_cpu_time_total"):
        self._check_finish()
        return self.function_events.export_stacks(path, metric)
