"""Tests generated from the op registry: every ``Sample`` of every op in ``tracegrad.ops.REG``.

Adding an op with samples adds it here with no edit to this file. Per sample:

forward
    The sample runs through its public function (``op.public`` or ``sample.call``) while
    ``op.impl`` is wrapped to record the calls the op receives (input arrays and params). The
    reference is the same jax math: ``op.impl`` on the recorded arrays with the recorded params.
    Checked: the sample reaches its op; the public result equals the reference in shape, dtype
    and value (dispatch -- promotion, Tensor wrapping, in-place rebinding, grad recording --
    changes nothing); for a direct call the recorded arrays are the sample's own tensors cast
    to PyTorch's result dtype; with grad mode off the output is the same and has no history.
    Recording, rather than re-running the public function under ``jax.vjp``, is what lets
    samples whose result shape depends on values (boolean-mask indexing) be checked like the
    others. The independent oracle for forward semantics is PyTorch (last test, when installed).

VJP against jax (float64)
    ``out.grad_fn`` -- the node the engine runs, with its rule, unbroadcasting and casts -- is
    applied to a random cotangent ``v`` and compared with ``jax.vjp`` of ``op.impl`` at the
    recorded inputs: our rule, written in tracegrad ops, against jax's own derivative of the
    impl. (The jax side runs under ``jax.jit``: one XLA compile per sample instead of one per
    primitive keeps this file fast.)

VJP against finite differences (float64)
    The engine (``autograd.grad``) computes ``J^T v`` from the sample's output back to the
    sample's inputs, through every op the call uses; central differences of the eager call
    give ``J u`` along a random direction ``u``; ``<u, J^T v>`` must equal ``<v, J u>``.

Inputs are random in ``op.domain`` (default ``(-2, 2)``); tolerances default below and are
widened by ``op.tol``. Ops with ``differentiable=False`` get the forward checks only.
"""
from __future__ import annotations

import importlib
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad
from tracegrad import _dtype as D
from tracegrad._tensor import Tensor
from tracegrad.ops import REG
from tracegrad.ops._registry import OpNode

for _family in ("tracegrad.nn.functional",):  # op families outside ``import tracegrad``
    try:
        importlib.import_module(_family)
    except ImportError:
        pass

CASES = [(op, i, s) for op in REG.values() if op.samples for i, s in enumerate(op.samples)]
IDS = [f"{op.name}-{i}" for op, i, _ in CASES]
DIFF = [c for c in CASES if c[0].differentiable]
DIFF_IDS = [f"{op.name}-{i}" for op, i, _ in DIFF]

FORWARD_TOL = {"rtol": 1e-12, "atol": 1e-12}
JAX_TOL = {"rtol": 1e-9, "atol": 1e-11}
FD_TOL = {"rtol": 1e-6, "atol": 1e-7}
TORCH_TOL = {"rtol": 1e-9, "atol": 1e-11}


def _rng(op, i, salt=""):
    return np.random.default_rng(zlib.crc32(f"{op.name}/{i}/{salt}".encode()))


def _sample_arrays(op, i, sample):
    """Float64 arrays for the sample's shape arguments, uniform in the op's domain."""
    return sample.random_arrays(op.domain, f"{op.name}/{i}/")


def _args(sample, arrays, *, requires_grad=True, lib=tracegrad):
    return sample.arguments(arrays, requires_grad=requires_grad, lib=lib)


def _call(op, sample):
    return sample.call or op.public


class _Recorder:
    """Wraps ``op.impl`` to record each call: (input values, params, result)."""

    def __init__(self, op):
        self.op, self.impl, self.calls = op, op.impl, []

    def __call__(self, *vals, **params):
        out = self.impl(*vals, **params)
        self.calls.append((vals, params, out))
        return out


def _run(op, i, sample, monkeypatch, arrays=None, grad=True):
    """Run the sample; returns (out, args, recorded calls of ``op``)."""
    rec = _Recorder(op)
    monkeypatch.setattr(op, "impl", rec)
    try:
        arrays = _sample_arrays(op, i, sample) if arrays is None else arrays
        args = _args(sample, arrays)
        with tracegrad.set_grad_enabled(grad):
            out = _call(op, sample)(*args, **sample.kwargs)
    finally:
        monkeypatch.setattr(op, "impl", rec.impl)
    assert isinstance(out, Tensor), f"sample {sample!r} of {op.name} must return one tensor"
    return out, args, rec.calls


def _value(t):
    return np.asarray(t._data.value)


def _eval(op, sample, arrays):
    """The sample's output value with grad mode off (for finite differences)."""
    with tracegrad.no_grad():
        out = _call(op, sample)(*_args(sample, arrays, requires_grad=False), **sample.kwargs)
    return np.asarray(out._data.value, dtype=np.float64)


def _cotangent(op, i, t, salt="v"):
    return _rng(op, i, salt).standard_normal(tuple(t.shape)).astype(t.dtype.np)


def _close(actual, expected, tol, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **tol)


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_forward_matches_jax(op, i, sample, monkeypatch):
    out, args, calls = _run(op, i, sample, monkeypatch)
    assert calls, f"sample {sample!r} never reaches op {op.name!r}"
    vals, params, _ = calls[-1]
    ref = op.impl(*vals, **params)
    assert out.dtype is D.from_np(ref.dtype), f"{op.name}: dtype {out.dtype} != jax {ref.dtype}"
    _close(_value(out), ref, op.tolerance(FORWARD_TOL), f"{op.name} forward vs jax.jit(impl)")

    if sample.call is None:  # the op received the sample's own inputs, promoted
        dt = None
        if op.promote is not None:
            dt = D.result_type(*args[op.promote_from:])
            if op.promote == "float" and dt.category != 2:
                dt = D.get_default_dtype()
        for k, (a, v) in enumerate(zip(args, vals)):
            if isinstance(a, Tensor):
                want = a.dtype if dt is None or k < op.promote_from else dt
                assert v.dtype == want.np, f"{op.name}: input {k} reached impl as {v.dtype}"
                np.testing.assert_array_equal(np.asarray(v), _value(a).astype(want.np))

    out_ng, _, _ = _run(op, i, sample, monkeypatch, grad=False)
    # (a view of a tensor that requires grad, made under no_grad, requires grad, as PyTorch's)
    assert out_ng.grad_fn is None and out_ng.requires_grad == out_ng._is_view()
    _close(_value(out_ng), _value(out), {"rtol": 0, "atol": 0}, f"{op.name}: no_grad forward")


# ----------------------------------------------------------------------------- gradients
def test_every_differentiable_op_has_samples():
    missing = sorted(op.name for op in REG.values() if op.differentiable and not op.samples)
    assert not missing, f"differentiable ops without samples (give them Sample(...)s): {missing}"


def _node(op, sample, out):
    node = out.grad_fn
    assert isinstance(node, OpNode) and node.op is op, (
        f"sample {sample!r} of {op.name!r} must return the op's own output (got grad_fn "
        f"{node!r}); wrap extra work before the op, not after it")
    return node


@pytest.mark.parametrize("op,i,sample", DIFF, ids=DIFF_IDS)
def test_vjp_matches_jax(op, i, sample, monkeypatch):
    out, _, calls = _run(op, i, sample, monkeypatch)
    node = _node(op, sample, out)
    vals, params, _ = calls[-1]
    pos = [k for k, need in enumerate(node.needs) if need]
    assert pos, f"sample {sample!r} of {op.name!r} has no input that requires grad"
    v = _cotangent(op, i, out)

    ours = node(Tensor._make(jnp.asarray(v)))
    ours = ours if isinstance(ours, tuple) else (ours,)

    def f(*diff):
        full = list(vals)
        for k, d in zip(pos, diff):
            full[k] = d
        return op.impl(*full, **params)

    ref = jax.jit(lambda d, v: jax.vjp(f, *d)[1](v))([vals[k] for k in pos], jnp.asarray(v))
    for k, r in zip(pos, ref):
        assert ours[k] is not None, f"{op.name}: no gradient for input {k}"
        _close(_value(ours[k]), r, op.tolerance(JAX_TOL), f"{op.name}: VJP for input {k} vs jax.vjp")
    for k, g in enumerate(ours):
        if k not in pos:
            assert g is None, f"{op.name}: gradient for input {k}, which does not require grad"


@pytest.mark.parametrize("op,i,sample", DIFF, ids=DIFF_IDS)
def test_vjp_matches_finite_differences(op, i, sample, monkeypatch):
    arrays = _sample_arrays(op, i, sample)
    out, args, _ = _run(op, i, sample, monkeypatch, arrays=arrays)
    inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    v = _cotangent(op, i, out)
    grads = tracegrad.autograd.grad(out, inputs, tracegrad.tensor(v), allow_unused=True)

    us = [_rng(op, i, f"u{k}").standard_normal(a.shape) for k, a in enumerate(arrays)]
    lhs = sum(float(np.sum(u * (0.0 if g is None else _value(g)))) for u, g in zip(us, grads))
    # float64 outputs: eps 1e-6; lower-precision outputs (convert) need a wider step
    eps = 1e-6 if out.dtype is D.float64 else 1e-2
    plus = _eval(op, sample, [a + eps * u for a, u in zip(arrays, us)])
    minus = _eval(op, sample, [a - eps * u for a, u in zip(arrays, us)])
    rhs = float(np.sum(v.astype(np.float64) * (plus - minus) / (2 * eps)))
    tol = op.tolerance(FD_TOL)
    assert abs(lhs - rhs) <= tol["atol"] + tol["rtol"] * abs(rhs), (
        f"{op.name} {sample!r}: <u, J^T v> = {lhs!r} (engine) but <v, J u> = {rhs!r} "
        f"(central differences)")


# ----------------------------------------------------------------------------- PyTorch
def _torch_fn(torch, op, sample):
    """The PyTorch function for this sample, or None: ``torch.<public name>`` for a direct call,
    or the sample's own ``call`` when it only uses tensor methods and operators."""
    if sample.call is None:
        name = getattr(op.public, "__name__", "")
        return getattr(torch, name, None) if name.isidentifier() else None
    return sample.call


def _plain(x):
    return isinstance(x, (int, float, bool, type(None))) or (
        isinstance(x, (tuple, list)) and all(_plain(e) for e in x))


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_matches_pytorch(op, i, sample, torch_ref, monkeypatch):
    torch = torch_ref
    fn = _torch_fn(torch, op, sample)
    if fn is None or not all(_plain(v) for v in sample.kwargs.values()):
        pytest.skip(f"no PyTorch function for {op.name}")
    arrays = _sample_arrays(op, i, sample)
    targs = _args(sample, arrays, lib=torch)
    try:
        tout = fn(*targs, **sample.kwargs)
    except Exception as e:  # a call written with tracegrad functions, not methods
        pytest.skip(f"sample call does not run on torch tensors: {type(e).__name__}")
    if not isinstance(tout, torch.Tensor):
        pytest.skip("sample call does not run on torch tensors")

    out, args, _ = _run(op, i, sample, monkeypatch, arrays=arrays)
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    tol = op.tolerance(TORCH_TOL)
    _close(_value(out), tout.detach().numpy(), tol, f"{op.name} forward vs PyTorch")

    if not (op.differentiable and tout.requires_grad):
        return
    v = _cotangent(op, i, out)
    tin = [a for a in targs if isinstance(a, torch.Tensor) and a.requires_grad]
    ours_in = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    tg = torch.autograd.grad(tout, tin, torch.tensor(v), allow_unused=True)
    og = tracegrad.autograd.grad(out, ours_in, tracegrad.tensor(v), allow_unused=True)
    for k, (a, b) in enumerate(zip(og, tg)):
        a = np.zeros(ours_in[k].shape) if a is None else _value(a)
        b = np.zeros(tuple(tin[k].shape)) if b is None else b.numpy()
        _close(a, b, tol, f"{op.name}: gradient of input {k} vs PyTorch")
