"""``tracegrad.autograd.profiler``: PyTorch's autograd profiler, for eager ops, backward
nodes, compiled regions and user ranges.

    import tracegrad as torch
    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.autograd.profiler.record_function("step"):
            loss = (w * x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")       # open in https://ui.perfetto.dev

What is recorded, each with wall-clock start/end (``time.perf_counter_ns``) and thread:

- every registry op run eagerly (``tg::mul``, also the ops a backward rule runs),
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

import functools
import itertools
import json
import os
import sys
import threading
import time
import warnings

import jax
import jax.numpy as jnp

from .._device import _gpus
from .._state import STATE
from .._tensor import Tensor
from .engine import GraphRoot

__all__ = ["profile", "record_function", "region", "EventList", "FunctionEvent",
           "FunctionEventAvg"]

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
        return _Range(self, "tg::" + op.name, "op", _shapes(args) if self.record_shapes else None)

    def function_range(self, name, args):
        """For ``autograd.Function.apply``: a range named after the Function class around its
        forward (PyTorch shows ``Func`` with the forward's ops inside)."""
        return _Range(self, name, "function", _shapes(args) if self.record_shapes else None)

    def node_range(self, node):
        if type(node) is GraphRoot:   # the engine's feeder, not a node of the user's graph
            return _NULL
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


# ----------------------------------------------------------------------------- results

class Interval:
    """``event.time_range``: start and end in microseconds from the start of the profile."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start, self.end = start, end

    def elapsed_us(self):
        return self.end - self.start

    def __repr__(self):
        return f"Interval(start={self.start:.3f}, end={self.end:.3f})"


def _format_time(time_us):
    if time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


def _format_time_share(time_us, total_us):
    if total_us == 0:
        return "NaN"
    return f"{time_us * 100.0 / total_us:.2f}%"


class _TimeStrs:
    # PyTorch's *_str properties; `cuda` spellings alias `device`
    @property
    def cpu_time_str(self):
        return _format_time(self.cpu_time)

    @property
    def cpu_time_total_str(self):
        return _format_time(self.cpu_time_total)

    @property
    def self_cpu_time_total_str(self):
        return _format_time(self.self_cpu_time_total)

    @property
    def device_time_str(self):
        return _format_time(self.device_time)

    @property
    def device_time_total_str(self):
        return _format_time(self.device_time_total)

    @property
    def self_device_time_total_str(self):
        return _format_time(self.self_device_time_total)

    @property
    def cuda_time(self):
        return self.device_time

    @property
    def cuda_time_total(self):
        return self.device_time_total

    @property
    def self_cuda_time_total(self):
        return self.self_device_time_total


class FunctionEvent(_TimeStrs):
    """One recorded range. Times are in microseconds (floats), from the start of the profile.

    name/key, kind ("op" | "backward" | "function" | "compile" | "user"), thread (``threading.get_ident()``),
    thread_name, native_thread_id (the OS thread id, the trace's ``tid``), time_range, input_shapes (with record_shapes), stack (with with_stack),
    args (a dict: a compiled region's ``cache``/``flops``/...), cpu_parent, cpu_children,
    cpu_time_total, self_cpu_time_total, device_time_total, self_device_time_total, count (1).
    """

    count = 1
    is_async = False
    is_remote = False
    node_id = -1
    overload_name = ""

    def __init__(self, id, name, kind, thread, thread_name, native_thread_id, start_us, end_us,
                 input_shapes, args, stack, self_device_us, use_device):
        self.id = id
        self.name = name
        self.kind = kind
        self.thread = thread
        self.thread_name = thread_name
        self.native_thread_id = native_thread_id
        self.time_range = Interval(start_us, end_us)
        self.input_shapes = input_shapes
        self.args = dict(args) if args else {}
        self.stack = stack if stack is not None else []
        self.self_device_time_total = self_device_us
        self.device_time_total = self_device_us   # children are added once the tree is built
        self.use_device = use_device
        self.cpu_parent = None
        self.cpu_children = []

    @property
    def key(self):
        return self.name

    @property
    def trace_name(self):
        return self.name

    @property
    def flops(self):
        return self.args.get("flops", 0) or 0

    @property
    def cpu_time_total(self):
        return self.time_range.elapsed_us()

    @property
    def self_cpu_time_total(self):
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children)

    @property
    def cpu_time(self):
        return self.cpu_time_total

    @property
    def device_time(self):
        return self.device_time_total

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} kind={self.kind} "
                f"thread={self.thread} cpu_time={self.cpu_time_total_str} "
                f"start_us={self.time_range.start:.3f} end_us={self.time_range.end:.3f} "
                f"cpu_children={[c.id for c in self.cpu_children]} "
                f"input_shapes={self.input_shapes} args={self.args}>")


class FunctionEventAvg(_TimeStrs):
    """Events aggregated under one key (what ``key_averages()`` lists)."""

    is_async = False
    is_remote = False
    node_id = -1
    overload_name = ""

    def __init__(self, key=None, input_shapes=None, stack=None, use_device=None):
        self.key = key
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.device_time_total = 0.0
        self.self_device_time_total = 0.0
        self.flops = 0
        self.input_shapes = input_shapes
        self.stack = stack if stack is not None else []
        self.use_device = use_device
        self.cpu_parent = None
        self.cpu_children = []

    def add(self, other):
        if self.key is None:
            self.key = other.key
        if self.use_device is None:
            self.use_device = other.use_device
        self.count += other.count
        self.cpu_time_total += other.cpu_time_total
        self.self_cpu_time_total += other.self_cpu_time_total
        self.device_time_total += other.device_time_total
        self.self_device_time_total += other.self_device_time_total
        self.flops += other.flops
        return self

    def __iadd__(self, other):
        return self.add(other)

    @property
    def cpu_time(self):
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def device_time(self):
        return self.device_time_total / self.count if self.count else 0.0

    def __repr__(self):
        dev = self.use_device or "cuda"
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total_str} "
                f"cpu_time={self.cpu_time_str} self_{dev}_time={self.self_device_time_total_str} "
                f"{dev}_time={self.device_time_str} count={self.count} "
                f"input_shapes={self.input_shapes}>")


class EventList(list):
    """A list of events with PyTorch's ``table``, ``key_averages``, ``total_average`` and
    ``export_chrome_trace``."""

    def __init__(self, events=(), *, use_device=None, base_time_ns=0, pid=None):
        super().__init__(events)
        self._use_device = use_device
        self._base_time_ns = base_time_ns
        self._pid = os.getpid() if pid is None else pid

    def __str__(self):
        return self.table()

    @property
    def self_cpu_time_total(self):
        return sum(e.self_cpu_time_total for e in self)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False, time_unit=None):
        """PyTorch's table: Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg,
        (device columns), # of Calls, (Input Shapes), (Source Location). ``sort_by`` is an
        event attribute, e.g. ``"cpu_time_total"``, ``"self_cpu_time_total"``, ``"count"``,
        ``"cuda_time_total"``."""
        return _build_table(self, sort_by, row_limit, max_src_column_width,
                            max_name_column_width, max_shapes_column_width, header,
                            top_level_events_only, time_unit, self._use_device)

    def key_averages(self, group_by_input_shapes=False, group_by_stack_n=0):
        """One ``FunctionEventAvg`` per event name (and input shapes, and top stack frames,
        when asked), in order of first appearance."""
        stats = {}
        for e in self:
            key = (e.key,)
            if group_by_input_shapes:
                key += (str(e.input_shapes),)
            if group_by_stack_n > 0:
                key += tuple(e.stack[:group_by_stack_n])
            avg = stats.get(key)
            if avg is None:
                avg = stats[key] = FunctionEventAvg(
                    e.key, e.input_shapes if group_by_input_shapes else None,
                    e.stack[:group_by_stack_n] if group_by_stack_n > 0 else None, e.use_device)
            avg.add(e)
        return EventList(stats.values(), use_device=self._use_device,
                         base_time_ns=self._base_time_ns, pid=self._pid)

    def total_average(self):
        total = FunctionEventAvg(use_device=self._use_device)
        for e in self:
            total.add(e)
        total.key = "Total"
        return total

    def export_chrome_trace(self, path):
        """Write a Chrome / Perfetto trace (JSON object format): one complete event
        (``"ph": "X"``) per recorded event, ``ts``/``dur`` in microseconds from the start of
        the profile (``baseTimeNanoseconds`` is its wall-clock start), one track per thread
        (``tid`` is the OS thread id, named by a ``thread_name`` metadata event);
        ``args`` holds input shapes, device wait and a compiled region's args."""
        pid = self._pid
        out = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                "args": {"name": "tracegrad"}}]
        threads = {}
        for e in self:
            if isinstance(e, FunctionEvent):
                threads.setdefault(e.native_thread_id, e.thread_name)
        for tid, tname in threads.items():
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                        "args": {"name": f"{tname} ({tid})"}})
        for e in self:
            if not isinstance(e, FunctionEvent):
                continue
            args = {}
            if e.input_shapes:
                args["Input Shapes"] = e.input_shapes
            if self._use_device:
                args["device wait (us)"] = round(e.self_device_time_total, 3)
            if e.stack:
                args["Stack"] = e.stack
            for k, v in e.args.items():
                args[k] = v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
            out.append({"name": e.name, "cat": e.kind, "ph": "X",
                        "ts": round(e.time_range.start, 3),
                        "dur": round(e.time_range.elapsed_us(), 3),
                        "pid": pid, "tid": e.native_thread_id, "args": args})
        doc = {"traceEvents": out, "displayTimeUnit": "ms",
               "baseTimeNanoseconds": self._base_time_ns,
               "otherData": {"producer": "tracegrad.autograd.profiler"}}
        with open(path, "w") as f:
            json.dump(doc, f)

    def export_stacks(self, path, metric="self_cpu_time_total"):
        """Flame-graph input: ``frame;frame;... value`` per event with a stack (with_stack)."""
        valid = ("self_cpu_time_total", "self_cuda_time_total", "self_device_time_total")
        if metric not in valid:
            raise ValueError("metric should be one of: " + str(list(valid)))
        attr = metric.replace("cuda", "device")
        tr = str.maketrans(" ;\t\n", "____")
        with open(path, "w") as f:
            for e in self:
                v = int(getattr(e, attr))
                if e.stack and v > 0:
                    f.write(";".join(s.translate(tr) for s in reversed(e.stack)) + f" {v}\n")


def _build_table(events, sort_by, row_limit, max_src_column_width, max_name_column_width,
                 max_shapes_column_width, header, top_level_events_only, time_unit, use_device):
    # Same layout and numbers as torch.autograd.profiler_util._build_table.
    if len(events) == 0:
        return ""
    if sort_by is not None:
        attr = sort_by.replace("cuda", "device").replace("xpu", "device")
        if not hasattr(events[0], attr):
            raise AttributeError(f"table(sort_by={sort_by!r}): events have no attribute "
                                 f"{attr!r}; use e.g. 'cpu_time_total', 'self_cpu_time_total', "
                                 f"'count' or 'cuda_time_total'")
        events = sorted(events, key=lambda e: getattr(e, attr), reverse=True)
    has_device = use_device is not None
    has_shapes = any(e.input_shapes for e in events)
    stacks = [e.stack for e in events if e.stack]
    name_w = max(len(e.key) for e in events) + 4
    if max_name_column_width is not None:
        name_w = min(name_w, max_name_column_width)
    shapes_w = max(len(str(e.input_shapes)) for e in events) + 4
    if max_shapes_column_width is not None:
        shapes_w = min(shapes_w, max_shapes_column_width)
    W = 12
    headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    dev = (use_device or "").upper()
    if has_device:
        headers += [f"Self {dev}", f"Self {dev} %", f"{dev} total", f"{dev} time avg"]
    headers.append("# of Calls")
    widths = [(name_w, ">")] + [(W, ">")] * (len(headers) - 1)
    if has_shapes:
        headers.append("Input Shapes")
        widths.append((shapes_w, ">"))
    src_w = None
    if stacks:
        src_w = max(len(s) for st in stacks for s in st) + 4
        if max_src_column_width is not None:
            src_w = min(src_w, max_src_column_width)
        headers.append("Source Location")
        widths.append((src_w, "<"))
    row_format = "".join("{: " + d + str(w) + "}  " for w, d in widths)
    sep = "".join("-" * w + "  " for w, _ in widths)
    line_len = sum(w + 2 for w, _ in widths) - 2

    def t(us):
        if time_unit == "s":
            return f"{us / 1e6:.3f}s"
        if time_unit == "ms":
            return f"{us / 1e3:.3f}ms"
        if time_unit == "us":
            return f"{us:.3f}us"
        return _format_time(us)

    def trim(path):
        if len(path) > src_w:
            path = path[len(path) - src_w:]
            if len(path) > 3:
                path = "..." + path[3:]
        return path

    sum_cpu = sum(e.self_cpu_time_total for e in events)
    sum_dev = sum(e.self_device_time_total for e in events)
    lines = []
    if header is not None:
        lines += ["=" * line_len, header]
    if top_level_events_only:
        lines += ["=" * line_len, "This report only display top-level ops statistics"]
    lines += [sep, row_format.format(*headers), sep]
    shown = 0
    for e in events:
        if shown == row_limit:
            break
        if top_level_events_only and e.cpu_parent is not None:
            continue
        shown += 1
        name = e.key
        if max_name_column_width is not None and len(name) >= max_name_column_width - 3:
            name = name[:max_name_column_width - 3] + "..."
        row = [name, _format_time_share(e.self_cpu_time_total, sum_cpu), t(e.self_cpu_time_total),
               _format_time_share(e.cpu_time_total, sum_cpu), t(e.cpu_time_total), t(e.cpu_time)]
        if has_device:
            row += [t(e.self_device_time_total),
                    _format_time_share(e.self_device_time_total, sum_dev),
                    t(e.device_time_total), t(e.device_time)]
        row.append(e.count)
        if has_shapes:
            row.append(str(e.input_shapes)[:shapes_w])
        if stacks:
            row.append(trim(e.stack[0]) if e.stack else "")
        lines.append(row_format.format(*row))
        if stacks:
            blank = [""] * (len(headers) - 1)
            for entry in e.stack[1:]:
                lines.append(row_format.format(*(blank + [trim(entry)])))
            lines.append(row_format.format(*(blank + [""])))
    lines.append(sep)
    lines.append(f"Self CPU time total: {t(sum_cpu)}")
    if has_device:
        lines.append(f"Self {dev} time total: {t(sum_dev)}")
    return "\n".join(lines) + "\n"


def _build_events(raw, t0_ns, thread_names, use_device):
    """Raw records -> FunctionEvents with parents/children linked (per thread, by the
    enter/exit sequence numbers) and device totals summed up the tree."""
    raw = sorted(raw, key=lambda r: r[4])   # by entry order
    events = []
    stacks = {}                             # thread -> open ancestors (event, exit seq)
    for i, (name, kind, a, b, s0, s1, tid, shapes, args, stack, dev) in enumerate(raw):
        tname, native = thread_names.get(tid, (str(tid), tid))
        e = FunctionEvent(i + 1, name, kind, tid, tname, native,
                          (a - t0_ns) / 1e3, (b - t0_ns) / 1e3, shapes, args, stack, dev / 1e3,
                          use_device)
        st = stacks.setdefault(tid, [])
        while st and st[-1][1] < s0:
            st.pop()
        if st:
            e.cpu_parent = st[-1][0]
            st[-1][0].cpu_children.append(e)
        st.append((e, s1))
        events.append(e)
    for e in reversed(events):              # children were entered later: sum bottom-up
        if e.cpu_parent is not None:
            e.cpu_parent.device_time_total += e.device_time_total
    events.sort(key=lambda e: (e.time_range.start, e.id))
    return events


# ----------------------------------------------------------------------------- profile

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
        events = _build_events(raw, self._t0, self._collector.thread_names, use_device)
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
