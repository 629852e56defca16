"""Property tests: random small programs of registry ops -- unary, binary with broadcasting,
reductions, matmul, reshapes -- drawn as a recipe, run eagerly and through
``tracegrad.compile``. Values and gradients (float64) must agree, on the traced call and on a
cache hit with new input values."""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tracegrad as tg  # noqa: E402

UNARY = {
    "sin": tg.sin, "cos": tg.cos, "tanh": tg.tanh, "sigmoid": tg.sigmoid, "neg": tg.neg,
    "square": tg.square, "exp_tanh": lambda t: tg.exp(tg.tanh(t)), "abs": tg.abs,
    "log1p_sq": lambda t: tg.log1p(t * t), "relu": tg.relu,
}
BINARY = {
    "add": tg.add, "sub": tg.sub, "mul": tg.mul, "maximum": tg.maximum,
    "div": lambda a, b: a / (1 + b * b),  # a denominator that stays away from 0
}
REDUCE = {"sum": tg.sum, "mean": tg.mean, "amax": tg.amax, "logsumexp": tg.logsumexp}


def _broadcast(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


@st.composite
def programs(draw):
    """(shape of x, shape of y, steps, output indices). A step is (kind, name, operands,
    params); values are numbered: 0 is x, 1 is y, then one per step."""
    m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    xs = (m, n)
    ys = draw(st.sampled_from([(m, n), (n,), (m, 1), (1, n), ()]))
    shapes = [xs, ys]
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(shapes) - 1))
        a = shapes[i]
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "matmul", "reshape"]))
        if kind == "binary":
            partners = [j for j, s in enumerate(shapes) if _broadcast(a, s) is not None]
            j = draw(st.sampled_from(partners))
            name = draw(st.sampled_from(sorted(BINARY)))
            steps.append(("binary", name, (i, j), {}))
            shapes.append(_broadcast(a, shapes[j]))
            continue
        if kind == "reduce" and len(a) > 0:
            name = draw(st.sampled_from(sorted(REDUCE)))
            dim = draw(st.sampled_from([None] + list(range(-len(a), len(a)))))
            keep = draw(st.booleans())
            if name == "logsumexp" and dim is None:
                dim = 0
            params = {} if dim is None else {"dim": dim, "keepdim": keep}
            steps.append(("reduce", name, (i,), params))
            if dim is None:
                shapes.append(())
            else:
                d = dim % len(a)
                shapes.append(a[:d] + ((1,) if keep else ()) + a[d + 1:])
            continue
        if kind == "matmul" and len(a) in (1, 2):
            partners = [j for j, s in enumerate(shapes) if len(s) in (1, 2) and s[0] == a[-1]]
            if partners and draw(st.booleans()):
                j = draw(st.sampled_from(partners))
                steps.append(("matmul", "a@b", (i, j), {}))
                b = shapes[j]
                shapes.append(a[:-1] + b[1:])
            else:  # a @ a.T (2-D) or a @ a (1-D): always valid
                steps.append(("matmul", "a@aT", (i,), {}))
                shapes.append((a[0], a[0]) if len(a) == 2 else ())
            continue
        if kind == "reshape" and len(a) > 0:
            options = ["flatten", "unsqueeze"] + (["t", "reverse"] if len(a) == 2 else [])
            name = draw(st.sampled_from(options))
            steps.append(("reshape", name, (i,), {}))
            shapes.append({"flatten": (int(np.prod(a)),), "unsqueeze": (1,) + a,
                           "t": a[::-1], "reverse": a[::-1]}[name])
            continue
        name = draw(st.sampled_from(sorted(UNARY)))
        steps.append(("unary", name, (i,), {}))
        shapes.append(a)
    n_vals = len(shapes)
    outs = sorted({n_vals - 1, draw(st.integers(2, n_vals - 1))})
    return xs, ys, steps, outs


def run(program, x, y):
    _, _, steps, outs = program
    vals = [x, y]
    for kind, name, ops, params in steps:
        args = [vals[k] for k in ops]
        if kind == "unary":
            v = UNARY[name](*args)
        elif kind == "binary":
            v = BINARY[name](*args)
        elif kind == "reduce":
            v = REDUCE[name](*args, **params)
        elif kind == "matmul":
            a = args[0]
            v = a @ args[1] if name == "a@b" else (a @ a.t() if a.ndim == 2 else a @ a)
        else:
            a = args[0]
            v = {"flatten": lambda: a.reshape(-1), "unsqueeze": lambda: a.unsqueeze(0),
                 "t": lambda: a.t(), "reverse": lambda: a.reshape(*a.shape[::-1])}[name]()
        vals.append(v)
    return tuple(vals[k] for k in outs)


def _inputs(rng, program):
    xs, ys = program[:2]
    return (tg.tensor(rng.uniform(-1.5, 1.5, xs), requires_grad=True),
            tg.tensor(rng.uniform(-1.5, 1.5, ys), requires_grad=True))


def _grads(outs, inputs, vs):
    loss = sum((o * tg.tensor(v)).sum() for o, v in zip(outs, vs))
    return tg.autograd.grad(loss, inputs, allow_unused=True)


TOL = {"rtol": 1e-9, "atol": 1e-10}


def _agree(got, want, inputs, what):
    for k, (a, b) in enumerate(zip(got, want)):
        a = np.zeros(inputs[k].shape) if a is None else a.numpy()
        b = np.zeros(inputs[k].shape) if b is None else b.numpy()
        np.testing.assert_allclose(a, b, err_msg=f"{what}: gradient of input {k}", **TOL)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.integers(0, 2**32 - 1))
def test_random_programs_compiled_match_eager(program, seed):
    rng = np.random.default_rng(seed)
    compiled = tg.compile(lambda x, y: run(program, x, y), fullgraph=True)
    for call in ("trace", "hit"):
        x, y = _inputs(rng, program)
        ex, ey = x.detach().requires_grad_(), y.detach().requires_grad_()
        outs = compiled(x, y)
        want = run(program, ex, ey)
        vs = [rng.standard_normal(tuple(o.shape)) for o in want]
        for k, (o, w) in enumerate(zip(outs, want)):
            assert tuple(o.shape) == tuple(w.shape) and o.dtype is w.dtype
            assert o.requires_grad == w.requires_grad
            np.testing.assert_allclose(o.detach().numpy(), w.detach().numpy(),
                                       err_msg=f"{call}: output {k} of {program}", **TOL)
        _agree(_grads(outs, [x, y], vs), _grads(want, [ex, ey], vs), [x, y], f"{call} {program}")
    assert compiled.stats["traces"] == 1 and compiled.stats["hits"] == 1


def _scalar_loss(program, x, y):
    return sum((o * o).sum() for o in run(program, x, y))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.integers(0, 2**32 - 1))
def test_random_programs_reduced_to_a_loss_run_the_joint_program(program, seed):
    """A scalar loss .backward()-ed each call: calls 2 and 3 run the joint program; values
    and .grad agree with eager every time."""
    rng = np.random.default_rng(seed)
    compiled = tg.compile(lambda x, y: _scalar_loss(program, x, y), fullgraph=True)
    for call in range(3):
        x, y = _inputs(rng, program)
        ex, ey = x.detach().requires_grad_(), y.detach().requires_grad_()
        loss, want = compiled(x, y), _scalar_loss(program, ex, ey)
        np.testing.assert_allclose(loss.item(), want.item(), err_msg=f"call {call}", **TOL)
        loss.backward()
        want.backward()
        _agree([x.grad, y.grad], [ex.grad, ey.grad], [x, y], f"call {call} {program}")
    assert compiled.stats["joint_calls"] == 2


def test_program_generator_covers_every_kind():
    """Guards the strategy itself: the drawn programs use every kind of step."""
    kinds = set()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(programs())
    def collect(program):
        kinds.update(k for k, *_ in program[2])
    collect()
    assert kinds == {"unary", "binary", "reduce", "matmul", "reshape"}
