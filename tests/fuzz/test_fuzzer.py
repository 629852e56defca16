"""The fuzzer's own tests: it reaches every registered op, is deterministic, prints runnable
programs, sees the differences it is meant to see, places errors at their step, and shrinks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tracegrad  # noqa: E402
from tracegrad.ops import REG  # noqa: E402

from . import entries, generator  # noqa: E402
from .campaign import check  # noqa: E402
from .compare import compare  # noqa: E402
from .features import CHECKS, FEATURES, KNOWN_OPEN, select  # noqa: E402
from .program import PRELUDE, Program, Step  # noqa: E402
from .runner import run  # noqa: E402
from .shrink import shrink  # noqa: E402


def test_every_registered_op_is_reached_by_an_entry():
    covered = {op for ops in entries.COVERS.values() for op in ops}
    missing = set(REG) - covered - entries.NOT_FUZZED_YET
    assert not missing, f"ops no fuzzer entry reaches: {sorted(missing)}"
    assert not covered & entries.NOT_FUZZED_YET, \
        f"reached now, take out of NOT_FUZZED_YET: {sorted(covered & entries.NOT_FUZZED_YET)}"
    assert covered <= set(REG), f"entries name unregistered ops: {sorted(covered - set(REG))}"


def test_known_open_names_features_with_reasons():
    assert set(KNOWN_OPEN) <= set(FEATURES) | set(CHECKS)
    assert all(len(reason) > 20 for reason in KNOWN_OPEN.values())


def test_generation_is_deterministic_for_a_seed():
    feats = select()
    for k in range(15):
        a, b = generator.generate((7, k), feats, torch), generator.generate((7, k), feats, torch)
        assert a.render() == b.render()


def test_programs_draw_every_family():
    labels = set()
    for k in range(300):  # (gather is rare: the first one is program 272 of seed 11)
        labels |= set(generator.generate((11, k), select(), torch).labels())
    for want in ["exp", "log", "relu", "abs", "mul", "div", "pow", "maximum", "where", "clamp",
                 "sum", "mean", "amax", "max(dim)", "argmax", "var", "softmax", "logsumexp",
                 "reshape", "view", "permute", "squeeze", "unsqueeze", "expand", "cat", "stack",
                 "split", "getitem", "getitem[adv]", "gather", "matmul", "linear",
                 "F.cross_entropy", "setitem", "fill_", "mul_", "mul_ (view)", "detach"]:
        assert want in labels, f"no program drew {want!r}"


def test_a_printed_program_runs_standalone():
    for k in range(10):
        p = generator.generate((3, k), select(off=KNOWN_OPEN), torch)
        obs = run(p, torch)[0]
        script = p.render(lib="torch")
        ns = {}
        if obs.error is None:
            exec(compile(script, "<repro>", "exec"), ns)
        else:
            with pytest.raises(Exception):
                exec(compile(script, "<repro>", "exec"), ns)


def _simple():
    return Program.from_source("x0 = T.tensor([1.0, -2.0], dtype=T.float64, requires_grad=True)",
                               "v0 = x0.exp()\nv1 = v0 * 3", "v1.backward(W(v1))")


def test_identical_runs_agree():
    assert check(_simple(), torch, tracegrad, compiled=True) == []


def test_the_comparison_sees_each_kind_of_difference():
    p = _simple()
    ref = run(p, torch)[0]
    for field, change, kind in [
            ("value", lambda v: v + 1e-5, "value"), ("requires_grad", lambda v: not v, "requires_grad"),
            ("is_leaf", lambda v: not v, "is_leaf"), ("grad_fn", lambda v: None, "grad_fn"),
            ("dtype", lambda v: "float32", "dtype"), ("version", lambda v: v + 1, "version")]:
        got = run(p, tracegrad)[0]
        got.tensors["v0"][field] = change(got.tensors["v0"][field])
        kinds = {m.kind for m in compare(p, ref, got, select())}
        assert kind in kinds, (field, kinds)
    got = run(p, tracegrad)[0]
    got.tensors["x0"]["grad"] = got.tensors["x0"]["grad"] * 2
    assert {m.kind for m in compare(p, ref, got, select())} == {"grad"}
    got = run(p, tracegrad)[0]
    got.tensors["v0"]["grad_fn"] = "OtherBackward0"
    assert {m.kind for m in compare(p, ref, got, select())} == {"grad_fn_name"}
    assert compare(p, ref, got, select(off=["grad_fn_name"])) == []


def test_float32_tolerance_is_wider_than_float64():
    p = Program.from_source("x0 = T.tensor([1.0, 3.0], dtype=T.float32)", "v0 = x0 / 3")
    ref = run(p, torch)[0]
    got = run(p, tracegrad)[0]
    got.tensors["v0"]["value"] = got.tensors["v0"]["value"] * (1 + 1e-6)
    assert compare(p, ref, got, select()) == []
    got.tensors["v0"]["value"] = got.tensors["v0"]["value"] * (1 + 1e-3)
    assert [m.kind for m in compare(p, ref, got, select())] == ["value"]


def test_errors_are_placed_at_their_step_in_eager_and_compiled_runs():
    p = Program.from_source("x0 = T.tensor([1.0, 2.0], dtype=T.float64)",
                            "v0 = x0 * 2\nv1 = v0.reshape(3)")
    for lib, mode in [(torch, "eager"), (tracegrad, "eager"), (tracegrad, "compiled")]:
        for obs in run(p, lib, mode):
            assert obs.error is not None and obs.error.type == "RuntimeError"
            assert obs.error.where == ("body", 1), (lib.__name__, mode, obs.error)
    assert check(p, torch, tracegrad, compiled=True) == []


def test_a_missing_error_and_an_extra_error_are_disagreements():
    p = Program.from_source("x0 = T.tensor([1.0, 2.0], dtype=T.float64)", "v0 = x0.reshape(3)")
    ref = run(p, torch)[0]
    got = dataclasses.replace(run(p, tracegrad)[0], error=None)
    assert [m.kind for m in compare(p, ref, got, select())] == ["error:not-raised"]
    assert [m.kind for m in compare(p, got, ref, select())] == ["error:raised"]


def test_the_shrinker_finds_the_one_step_that_matters():
    p = generator.generate((5, 3), select(), torch)
    while len(p.body) < 4 or "exp" in p.labels():
        p = generator.generate((5, len(p.body) * 7 + 1 + hash(p.render()) % 97), select(), torch)
    x = p.inputs[0].name
    p.body.insert(2, Step("exp", f"vexp = {x}.exp()", (x,), ("vexp",)))
    small = shrink(p, lambda c: "exp" in c.labels(), budget=400)
    assert small.labels() == ["exp"] and small.tail is None
    assert len(small.inputs) == 1 and small.inputs[0].data.size == 1


def test_the_prelude_weight_is_the_same_in_both_libraries():
    ns_t, ns_g = {"T": torch}, {"T": tracegrad}
    exec(PRELUDE, ns_t)
    exec(PRELUDE, ns_g)
    a = ns_t["W"](torch.zeros(2, 3), 1).numpy()
    b = ns_g["W"](tracegrad.zeros(2, 3), 1).numpy()
    np.testing.assert_array_equal(a, b)
    assert len(set(a.ravel())) > 1


def test_every_tail_shape_is_valid_python():
    import itertools
    from .program import Tail
    for kind, outs, retain, create, second, repeat, implicit in itertools.product(
            ["grad", "backward"], [["v0"], ["v0", "v1"]], [False, True], [False, True],
            [False, True], [0, 2], [False, True]):
        tail = Tail(kind, outs, ["x0", "x1"], retain, create, second, repeat, implicit)
        for step in tail.steps():
            compile(step.code, "<tail>", "exec")
