"""Results: ``FunctionEvent`` (one recorded range), ``FunctionEventAvg`` (events under one
key), ``EventList`` (tables, averages, chrome trace and flame-graph export), and the step that
turns a profile's raw records into linked events."""
from __future__ import annotations

import json
import os

from ._table import build_table, format_time

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "Interval", "build_events"]


class Interval:
    """``event.time_range``: start and end in microseconds from the start of the profile."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start, self.end = start, end

    def elapsed_us(self):
        return self.end - self.start

    def __repr__(self):
        return f"Interval(start={self.start:.3f}, end={self.end:.3f})"


class _TimeStrs:
    # PyTorch's *_str properties; `cuda` spellings alias `device`
    @property
    def cpu_time_str(self):
        return format_time(self.cpu_time)

    @property
    def cpu_time_total_str(self):
        return format_time(self.cpu_time_total)

    @property
    def self_cpu_time_total_str(self):
        return format_time(self.self_cpu_time_total)

    @property
    def device_time_str(self):
        return format_time(self.device_time)

    @property
    def device_time_total_str(self):
        return format_time(self.device_time_total)

    @property
    def self_device_time_total_str(self):
        return format_time(self.self_device_time_total)

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
        return build_table(self, sort_by, row_limit, max_src_column_width,
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


def build_events(raw, t0_ns, thread_names, use_device):
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
