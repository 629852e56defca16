"""tracegrad.autograd.profiler: what is recorded (ops, backward nodes, compiled regions, user
ranges), how it nests, threads, the table, the chrome trace, and the off path."""
import json
import threading
import warnings

import pytest

import tracegrad as tg
from tracegrad.autograd import profiler
from tracegrad._state import STATE
from tracegrad.ops._registry import REGISTRY


def _t(*vals, rg=True):
    return tg.tensor(list(vals), requires_grad=rg)


def _counts(prof, kind=None):
    c = {}
    for e in prof.events():
        if kind is None or e.kind == kind:
            c[e.name] = c.get(e.name, 0) + 1
    return c


@pytest.fixture
def count_impl(monkeypatch):
    """Count real executions of ops' impls, independently of the profiler."""
    calls = {}

    def wrap(name):
        op = REGISTRY[name]
        impl = op.impl

        def counted(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return impl(*a, **k)
        monkeypatch.setattr(op, "impl", counted)
    return calls, wrap


# ----------------------------------------------------------------------------- what is recorded

def test_call_counts_equal_ops_run_forward_and_backward(count_impl):
    calls, wrap = count_impl
    for name in ("mul", "add", "exp", "sum"):
        wrap(name)
    x, y = _t(1., 2.), _t(3., 4.)
    with profiler.profile() as prof:
        z = (3 * x + 2 * y + tg.exp(x) + tg.exp(y)).sum()
        z.backward()
    ops = {k[len("aten::"):]: v for k, v in _counts(prof, "op").items()}
    for name in ("mul", "add", "exp", "sum"):
        assert ops.get(name, 0) == calls.get(name, 0), name
    assert calls["mul"] >= 2 and calls["exp"] == 2
    avg = {a.key: a.count for a in prof.key_averages()}
    assert avg["aten::exp"] == 2 and avg["aten::mul"] == calls["mul"]


def test_backward_nodes_are_events_with_their_ops_inside():
    x, y = _t(1., 2.), _t(3., 4.)
    z = (x * y + x).sum()
    with profiler.profile() as prof:
        z.backward()
    nodes = _counts(prof, "backward")
    assert nodes == {"SumBackward0": 1, "AddBackward0": 1, "MulBackward0": 1,
                     "AccumulateGrad": 2}
    assert all(e.cpu_parent is None for e in prof.events() if e.kind == "backward")
    # ops run by the backward rules sit inside their node; the one op outside any node is
    # the engine summing x's two incoming gradients
    loose = [e.name for e in prof.events() if e.kind == "op" and e.cpu_parent is None]
    assert loose == ["aten::add"]
    assert all(e.cpu_parent.kind == "backward" for e in prof.events()
               if e.kind == "op" and e.cpu_parent is not None)
    mul_node = next(e for e in prof.events() if e.name == "MulBackward0")
    assert sorted(c.name for c in mul_node.cpu_children) == ["aten::mul", "aten::mul"]


def test_record_shapes_gives_input_shapes_and_scalars_as_empty():
    a = tg.ones(2, 3)
    with profiler.profile(record_shapes=True) as prof:
        a * 2.0
        a + a
    shapes = [(e.name, e.input_shapes) for e in prof.events()]
    assert shapes == [("aten::mul", [[2, 3], []]), ("aten::add", [[2, 3], [2, 3]])]
    grouped = prof.key_averages(group_by_input_shape=True)
    assert "Input Shapes" in grouped.table()
    with profiler.profile() as prof2:
        a * 2.0
    assert prof2.events()[0].input_shapes is None
    assert "Input Shapes" not in prof2.key_averages().table()


def test_with_stack_records_the_callers_line():
    a = tg.ones(2)
    with profiler.profile(with_stack=True) as prof:
        a * 2.0
    (e,) = prof.events()
    assert "test_profiler.py" in e.stack[0] and "test_with_stack" in e.stack[0]
    assert not any("tracegrad/ops" in s for s in e.stack)
    assert "Source Location" in prof.key_averages(group_by_stack_n=1).table()


def test_self_time_is_total_minus_children():
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            tg.ones(2) * 2.0
            tg.ones(2) + 1.0
    outer = next(e for e in prof.events() if e.name == "outer")
    kids = sum(c.cpu_time_total for c in outer.cpu_children)
    assert len(outer.cpu_children) == 2
    assert outer.self_cpu_time_total == pytest.approx(outer.cpu_time_total - kids)
    assert prof.total_average().count == len(prof.events())


# ----------------------------------------------------------------------------- record_function

def test_nested_record_function_ranges_nest_in_events_and_trace(tmp_path):
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            with profiler.record_function("inner"):
                tg.ones(2) * 3.0
            tg.ones(2) + 1.0
    by = {e.name: e for e in prof.events()}
    assert by["inner"].cpu_parent is by["outer"]
    assert by["aten::mul"].cpu_parent is by["inner"]
    assert by["aten::add"].cpu_parent is by["outer"]
    assert by["outer"].cpu_parent is None
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    ev = {e["name"]: e for e in json.loads(path.read_text())["traceEvents"] if e["ph"] == "X"}

    def inside(a, b):
        return b["ts"] <= a["ts"] and a["ts"] + a["dur"] <= b["ts"] + b["dur"] + 0.01  # ts, dur rounded to 1 ns
    assert inside(ev["inner"], ev["outer"]) and inside(ev["aten::mul"], ev["inner"])
    assert inside(ev["aten::add"], ev["outer"]) and not inside(ev["aten::add"], ev["inner"])


def test_record_function_as_decorator_is_one_range_per_call():
    @profiler.record_function("step")
    def step(a):
        return a * 2.0

    a = tg.ones(2)
    with profiler.profile() as prof:
        step(a)
        step(a)
    steps = [e for e in prof.events() if e.name == "step"]
    assert len(steps) == 2 and all(e.kind == "user" for e in steps)
    assert all([c.name for c in e.cpu_children] == ["aten::mul"] for e in steps)
    assert step(a).shape == (2,)  # still works with no profile


def test_record_function_outside_a_profile_records_nothing():
    with profiler.record_function("lonely") as r:
        tg.ones(2) * 2.0
    assert r._range is None
    with profiler.profile() as prof:
        pass
    assert len(prof.events()) == 0


# ----------------------------------------------------------------------------- chrome trace

def test_chrome_trace_has_one_complete_event_per_event(tmp_path):
    x = _t(1., 2.)
    with profiler.profile(record_shapes=True) as prof:
        with profiler.record_function("fwd"):
            y = (x * x).sum()
        y.backward()
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    doc = json.loads(path.read_text())
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    events = prof.events()
    assert len(xs) == len(events) > 0
    assert [e["name"] for e in xs] == [e.name for e in events]
    end = max(e["ts"] + e["dur"] for e in xs)
    for e in xs:
        assert e["ts"] >= 0 and e["dur"] >= 0 and e["ts"] + e["dur"] <= end
        assert isinstance(e["tid"], int) and isinstance(e["pid"], int)
    assert [e["ts"] for e in xs] == sorted(e["ts"] for e in xs)
    mul = next(e for e in xs if e["name"] == "aten::mul")
    assert mul["args"]["Input Shapes"] == [[2], [2]] and mul["cat"] == "op"
    names = [e for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"]
    assert {e["tid"] for e in names} == {e["tid"] for e in xs}
    assert doc["baseTimeNanoseconds"] > 0


# ----------------------------------------------------------------------------- compiled regions

def _fake_compiled_call(cache):
    with profiler.region("tg.compile[f]", cache=cache):
        if cache == "miss":
            with profiler.region("tg.compile.trace"):
                pass
            with profiler.region("tg.compile.codegen"):
                pass
            with profiler.region("tg.compile.xla_compile") as r:
                r.set(flops=120.0, bytes_accessed=64.0)
        with profiler.region("tg.compile.forward"):
            tg.ones(2) * 2.0


def test_region_records_a_miss_then_hits_with_args(tmp_path):
    with profiler.profile() as prof:
        for cache in ("miss", "hit", "hit"):
            _fake_compiled_call(cache)
    calls = [e for e in prof.events() if e.name == "tg.compile[f]"]
    assert [e.args["cache"] for e in calls] == ["miss", "hit", "hit"]
    assert [c.name for c in calls[0].cpu_children] == [
        "tg.compile.trace", "tg.compile.codegen", "tg.compile.xla_compile", "tg.compile.forward"]
    assert [c.name for c in calls[1].cpu_children] == ["tg.compile.forward"]
    xla = next(e for e in prof.events() if e.name == "tg.compile.xla_compile")
    assert xla.args == {"flops": 120.0, "bytes_accessed": 64.0} and xla.flops == 120.0
    assert {a.key: a.count for a in prof.key_averages()}["tg.compile[f]"] == 3
    path = tmp_path / "c.json"
    prof.export_chrome_trace(str(path))
    xs = [e for e in json.loads(path.read_text())["traceEvents"] if e["name"] == "tg.compile[f]"]
    assert [e["args"]["cache"] for e in xs] == ["miss", "hit", "hit"]


def test_region_without_profile_is_the_shared_null_context():
    assert STATE.profiler is None
    r1, r2 = profiler.region("a", cache="hit"), profiler.region("b")
    assert r1 is r2
    with r1 as r:
        assert r.set(flops=1) is r


@pytest.mark.skipif(not hasattr(tg, "compile"), reason="tracegrad.compile has not landed yet")
def test_compiled_function_shows_a_miss_then_hits():
    @tg.compile
    def f(a, b):
        return (a * b + a).sum()

    a, b = _t(1., 2.), _t(3., 4.)
    with profiler.profile() as prof:
        for _ in range(3):
            f(a, b).backward()
    calls = [e for e in prof.events() if e.name.startswith("tg.compile[")]
    assert [e.args.get("cache") for e in calls] == ["miss", "hit", "hit"]
    names = {e.name for e in prof.events()}
    # call 1: forward compiled, backward compiled lazily and run; the implicit-gradient
    # backward switches the entry to the joint program, compiled at call 2, run at call 3
    assert {"tg.compile.trace", "tg.compile.backward", "tg.compile.forward+backward"} <= names
    assert _counts(prof).get("tg.compile.trace") == 1
    compiles = [e.args.get("program") for e in prof.events() if e.name == "tg.compile.xla_compile"]
    assert compiles == [None, "joint"]


# ----------------------------------------------------------------------------- threads, nesting

def test_a_profile_records_only_its_own_thread():
    # as PyTorch's profilers (torch.profiler and torch.autograd.profiler): another thread's
    # ops are not recorded, even when that thread starts inside the profile
    a = tg.ones(3)
    seen = {}

    def work():
        seen["ident"] = threading.get_ident()
        with profiler.record_function("worker"):
            a * 2.0
        seen["profiler"] = STATE.profiler

    with profiler.profile() as prof:
        th = threading.Thread(target=work, name="prof-worker")
        th.start()
        th.join()
        a + 1.0
    assert [e.name for e in prof.events()] == ["aten::add"]
    assert prof.events()[0].thread == threading.get_ident() != seen["ident"]
    assert seen["profiler"] is None


def test_profiles_in_two_threads_at_once_each_get_their_own_events():
    a = tg.ones(2)
    inside, go, done = threading.Event(), threading.Event(), threading.Event()
    got = {}

    def work():
        with profiler.profile() as p:
            inside.set()
            go.wait()
            with profiler.record_function("worker"):
                a * 2.0
        got["prof"] = p
        done.set()

    th = threading.Thread(target=work, name="prof-worker")
    th.start()
    inside.wait()
    with profiler.profile() as prof:
        with profiler.record_function("main_range"):
            go.set()  # the worker's ops run while this range is open
            done.wait()
            a - 1.0
    th.join()
    assert [e.name for e in prof.events()] == ["main_range", "aten::sub"]
    worker = got["prof"].events()
    assert [e.name for e in worker] == ["worker", "aten::mul"]
    assert worker[0].thread_name == "prof-worker" and worker[1].cpu_parent is worker[0]
    assert STATE.profiler is None


def test_nested_profiles_each_get_their_events_and_hooks_are_restored():
    a = tg.ones(2)
    with profiler.profile(record_shapes=True) as outer:
        a * 2.0
        with profiler.profile() as inner:
            assert STATE.profiler is not None
            a + 1.0
        a - 1.0
    assert STATE.profiler is None
    assert [e.name for e in outer.events()] == ["aten::mul", "aten::add", "aten::sub"]
    assert [e.name for e in inner.events()] == ["aten::add"]
    assert inner.events()[0].input_shapes is None  # the inner profile did not ask for shapes
    assert outer.events()[1].input_shapes == [[2], []]


def test_profile_restores_the_hook_on_error_and_keeps_events():
    with pytest.raises(ValueError, match="boom"):
        with profiler.profile() as prof:
            tg.ones(2) * 2.0
            raise ValueError("boom")
    assert STATE.profiler is None
    assert [e.name for e in prof.events()] == ["aten::mul"]


def test_results_before_exit_raise_and_profile_is_not_reentrant():
    prof = profiler.profile()
    with prof:
        with pytest.raises(RuntimeError, match="Profiler didn't finish running"):
            prof.key_averages()
    with pytest.raises(RuntimeError, match="not reentrant"):
        with prof:
            pass
    assert STATE.profiler is None


def test_disabled_profile_records_nothing():
    with profiler.profile(enabled=False) as prof:
        assert STATE.profiler is None
        tg.ones(2) * 2.0
    assert len(prof.events()) == 0 and str(prof) == ""


# ----------------------------------------------------------------------------- table, devices

def test_table_columns_sorting_and_row_limit():
    a = tg.ones(2)
    with profiler.profile() as prof:
        for _ in range(3):
            a * 2.0
        a + 1.0
    table = prof.key_averages(group_by_input_shape=False).table(
        sort_by="cpu_time_total", row_limit=1)
    lines = table.splitlines()
    header = lines[1].split("  ")
    cols = [h.strip() for h in header if h.strip()]
    assert cols == ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total",
                    "CPU time avg", "# of Calls"]
    assert len([ln for ln in lines if "aten::" in ln]) == 1
    assert lines[-1].startswith("Self CPU time total: ")
    counts = prof.key_averages().table(sort_by="count")
    first = next(ln for ln in counts.splitlines() if "aten::" in ln)
    assert "aten::mul" in first and first.rstrip().endswith("3")
    assert "aten::add" in str(prof)
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        prof.key_averages().table(sort_by="bogus")


def test_table_header_matches_pytorch():
    torch = pytest.importorskip("torch")
    with torch.autograd.profiler.profile() as tp:
        torch.ones(2) * 2.0
    with profiler.profile() as prof:
        tg.ones(2) * 2.0
    theirs = tp.key_averages().table().splitlines()[1].split()
    ours = prof.key_averages().table().splitlines()[1].split()
    assert ours == theirs


@pytest.mark.skipif(tg._device._gpus() != (), reason="checks the no-GPU behaviour")
@pytest.mark.parametrize("kw", [dict(use_cuda=True), dict(use_device="cuda")])
def test_use_cuda_without_gpu_warns_and_records_cpu_only(kw):
    with pytest.warns(UserWarning, match="CUDA is not available, disabling CUDA profiling"):
        with profiler.profile(**kw) as prof:
            tg.ones(2) * 2.0
    assert prof.use_device is None
    assert "CUDA" not in prof.key_averages().table()
    assert [e.name for e in prof.events()] == ["aten::mul"]


@pytest.mark.gpu
@pytest.mark.skipif(tg._device._gpus() == (), reason="needs a GPU visible to jax")
def test_use_cuda_with_gpu_adds_device_columns_and_waits():
    a = tg.ones(256, 256, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with profiler.profile(use_cuda=True) as prof:
            with profiler.record_function("mm"):
                a @ a
    table = prof.key_averages().table(sort_by="cuda_time_total")
    assert "Self CUDA" in table and "CUDA total" in table
    mm = next(e for e in prof.events() if e.name == "mm")
    assert mm.device_time_total >= mm.cpu_children[0].device_time_total >= 0


def test_use_device_must_be_cuda_or_none():
    with pytest.raises(ValueError, match="use_device"):
        profiler.profile(use_device="tpu")


# ----------------------------------------------------------------------------- spec section 16

@pytest.mark.skipif(not hasattr(tg.autograd, "Function"),
                    reason="tracegrad.autograd.Function has not landed yet")
def test_spec_section_16_custom_function_on_cpu():
    torch = tg

    class Func(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            expx = torch.exp(x)
            expy = torch.exp(y)
            result = 3 * x + 2 * y + expx + expy
            ctx.save_for_backward(expx, expy)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            expx, expy, = ctx.saved_tensors
            grad_x = grad_output * (3 + expx)
            grad_y = grad_output * (2 + expy)
            return grad_x, grad_y

    myfunc = Func.apply
    x = torch.tensor([1., 2.], requires_grad=True)
    y = torch.tensor([3., 4.], requires_grad=True)
    grad = torch.tensor([1., 1.])
    with torch.autograd.profiler.profile() as prof:
        z = myfunc(x, y)
        z.backward(grad)
    text = str(prof)
    counts = {a.key: a.count for a in prof.key_averages()}
    assert counts["FuncBackward"] == 1 and counts["AccumulateGrad"] == 2
    assert counts["aten::exp"] == 2
    assert "FuncBackward" in text and "# of Calls" in text
    back = next(e for e in prof.events() if e.name == "FuncBackward")
    assert sorted(c.name for c in back.cpu_children) == ["aten::add", "aten::add", "aten::mul", "aten::mul"]
    assert x.grad.tolist() == pytest.approx([5.7183, 10.3891], abs=1e-4)


def test_profile_memory_warns_that_memory_is_not_tracked():
    with pytest.warns(UserWarning, match="does not track per-op memory"):
        with profiler.profile(profile_memory=True) as prof:
            tg.ones(2) * 2.0
    assert [e.name for e in prof.events()] == ["aten::mul"]
    assert "Mem" not in prof.key_averages().table()


def test_export_stacks_and_top_level_only(tmp_path):
    with profiler.profile(with_stack=True) as prof:
        with profiler.record_function("outer"):
            tg.ones(2) * 2.0
    path = tmp_path / "stacks.txt"
    prof.export_stacks(str(path), "self_cpu_time_total")
    lines = path.read_text().splitlines()
    # one line per event with >= 1 us of self time (PyTorch truncates the same way)
    assert 1 <= len(lines) <= 2
    assert all("test_export_stacks_and_top_level_only" in ln for ln in lines)
    with pytest.raises(ValueError, match="metric should be one of"):
        prof.export_stacks(str(path), "cpu_time")
    top = prof.table(top_level_events_only=True)
    assert "outer" in top and "aten::mul" not in top
